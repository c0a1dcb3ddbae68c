"""Resolve names bound by imports to canonical Lightning names (LightningModule, Trainer, ModelCheckpoint...).

Every common import form maps to a qualified name first (`import lightning.pytorch as pl` binds
`pl -> lightning.pytorch`; `from lightning import LightningModule as LM` binds `LM ->
lightning.LightningModule`), then a qualified name under a Lightning package root maps to the canonical
name of its last component when the catalog knows it.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from torchbolt import catalog

#: Packages whose public API torchbolt mirrors (longest first is not needed: only the last name counts).
LIGHTNING_ROOTS: tuple[str, ...] = ("lightning.pytorch", "lightning", "pytorch_lightning", "torchbolt")

#: Base classes that make a user class a Lightning class, and the catalog owner of their hooks.
KIND_OF_BASE: dict[str, str] = {
    "LightningModule": "module",
    "LightningDataModule": "datamodule",
    "Callback": "callback",
    **{spec.name: "callback" for spec in catalog.CALLBACKS},
}

#: Trainer subclasses of other libraries, known by name for when their package is not installed where the
#: server can read it (installed, their source is read and any other subclass is found the same way).
TRAINER_SUBCLASSES: frozenset[str] = frozenset({"flash.Trainer", "flash.core.trainer.Trainer"})

#: Every canonical name the server recognises.
KNOWN_NAMES: frozenset[str] = frozenset(
    {"LightningModule", "LightningDataModule", "Callback", "Trainer"}
    | {spec.name for spec in catalog.CALLBACKS}
    | {spec.name for spec in catalog.LOGGERS}
    | {spec.name for spec in catalog.PROFILER_CLASSES}
)


def is_lightning_module_path(qualified: str) -> bool:
    """True for `lightning`, `lightning.pytorch.callbacks`, `torchbolt.loggers`, ..."""
    return any(qualified == root or qualified.startswith(root + ".") for root in LIGHTNING_ROOTS)


def canonical(qualified: str | None) -> str | None:
    """Canonical Lightning name of a fully qualified name, or None when it is not a Lightning API name."""
    if not qualified or "." not in qualified:
        return None
    module, _, last = qualified.rpartition(".")
    if last in KNOWN_NAMES and is_lightning_module_path(module):
        return last
    return None


def module_package(module_name: str, is_package: bool) -> str:
    """The package a module's relative imports start from."""
    return module_name if is_package else module_name.rpartition(".")[0]


def absolute_module(module: str | None, level: int, package: str) -> str | None:
    """Absolute module name of `from <level dots><module> import ...` inside `package`; None if it escapes."""
    if level == 0:
        return module or None
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    if module:
        base.append(module)
    return ".".join(base) or None


def _import_statements(tree: ast.AST) -> list[ast.stmt]:
    """Imports at module level, also inside if / try / with blocks (not inside functions)."""
    out: list[ast.stmt] = []
    todo = list(getattr(tree, "body", [tree]))
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)) or type(node).__name__ == "TryStar":
            for field in ("body", "orelse", "finalbody"):
                todo.extend(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                todo.extend(handler.body)
    return out


def bindings_from_ast(tree: ast.AST, package: str = "", nested: bool = False) -> dict[str, str]:
    """Local name -> qualified name for the module's imports (later imports win).

    Module-level imports (including those under if / try / with) by default; `nested=True` also reads
    imports inside functions and classes (slower: walks the whole tree).
    """
    out: dict[str, str] = {}
    for node in ast.walk(tree) if nested else _import_statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom):
            mod = absolute_module(node.module, node.level, package)
            if mod is None:
                continue
            for alias in node.names:
                if alias.name == "*":
                    if is_lightning_module_path(mod):
                        for name in KNOWN_NAMES:
                            out.setdefault(name, f"{mod}.{name}")
                    continue
                out[alias.asname or alias.name] = f"{mod}.{alias.name}"
    return out


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for Name/Attribute chains, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def qualify(dotted: str, bindings: Mapping[str, str]) -> str | None:
    """Qualified name of a dotted expression through the import bindings; None when the head is not imported."""
    head, _, rest = dotted.partition(".")
    target = bindings.get(head)
    if target is None:
        return None
    return f"{target}.{rest}" if rest else target


def resolve(dotted: str | None, bindings: Mapping[str, str]) -> str | None:
    """Canonical Lightning name of a dotted expression (`pl.Trainer` -> `Trainer`), or None."""
    if not dotted:
        return None
    return canonical(qualify(dotted, bindings))
