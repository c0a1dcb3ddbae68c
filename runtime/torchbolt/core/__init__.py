"""The user-facing model classes: LightningModule and LightningDataModule."""

from __future__ import annotations

from typing import Any

__all__ = ["LightningDataModule", "LightningModule"]


def __getattr__(name: str) -> Any:
    # Lazy so that `import torchbolt.core` stays cheap until a class is used.
    if name == "LightningModule":
        from torchbolt.core.module import LightningModule

        return LightningModule
    if name == "LightningDataModule":
        from torchbolt.core.datamodule import LightningDataModule

        return LightningDataModule
    raise AttributeError(f"module 'torchbolt.core' has no attribute {name!r}")
