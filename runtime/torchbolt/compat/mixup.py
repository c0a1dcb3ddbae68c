"""A clear error when an object of the real Lightning reaches torchbolt's Trainer.

Happens when a script imports `lightning.pytorch` in a plain `python` process (no import hook) but
builds a torchbolt Trainer, or mixes both imports. Detected from class names alone, so Lightning is
never imported here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lightning_origin", "reject_lightning_objects"]

_LIGHTNING_PACKAGES = ("lightning", "pytorch_lightning", "lightning_fabric")


def lightning_origin(obj: Any) -> str | None:
    """'lightning.pytorch...LightningDataModule' when `obj` is an instance of a real Lightning class, else None."""
    for klass in type(obj).__mro__:
        module = getattr(klass, "__module__", "") or ""
        if module.split(".")[0] in _LIGHTNING_PACKAGES:
            return f"{module}.{klass.__qualname__}"
    return None


def reject_lightning_objects(where: str, **objects: Any) -> None:
    """TypeError naming the first argument that is a real Lightning object (lists of them too)."""
    for name, value in objects.items():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            origin = lightning_origin(item)
            if origin is None:
                continue
            raise TypeError(
                f"{where}: {name} is a {type(item).__name__} built on the real Lightning ({origin}), but this is "
                "torchbolt's Trainer; the two cannot be mixed. Fix: run the script with `torchbolt run SCRIPT` "
                "(Lightning imports then resolve to torchbolt), or import from torchbolt "
                "(`import torchbolt as pl`), or use Lightning's own Trainer (`torchbolt run --engine lightning`)."
            )
