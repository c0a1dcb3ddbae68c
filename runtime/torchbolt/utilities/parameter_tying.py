"""Find and restore tied (shared) parameters, e.g. after moving a model with tied embeddings to XLA."""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["find_shared_parameters", "set_shared_parameters"]


def find_shared_parameters(module: nn.Module) -> list[list[str]]:
    """Groups of dotted names that refer to one parameter object (only groups of two or more)."""
    names_by_param: dict[int, list[str]] = {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for name, param in sub._parameters.items():
            if param is not None:
                names_by_param.setdefault(id(param), []).append(f"{prefix}.{name}" if prefix else name)
    return [names for names in names_by_param.values() if len(names) > 1]


def _resolve(module: nn.Module, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def set_shared_parameters(module: nn.Module, shared_params: list[list[str]]) -> nn.Module:
    """Make every name in each group refer to the group's first parameter again; returns `module`."""
    for group in shared_params:
        ref = _resolve(module, group[0])
        for path in group[1:]:
            owner_path, _, attr = path.rpartition(".")
            setattr(_resolve(module, owner_path) if owner_path else module, attr, ref)
    return module
