"""torchbolt: a fast training runtime with Lightning 2.x's public API.

Attributes are imported lazily so that `import torchbolt.catalog` (used by the language server) never
imports torch, and `import torchbolt` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "LightningModule": "torchbolt.core.module",
    "LightningDataModule": "torchbolt.core.datamodule",
    "Callback": "torchbolt.callbacks.callback",
    "Trainer": "torchbolt.trainer.trainer",
    "seed_everything": "torchbolt.utilities.seed",
}
__all__ = ["Callback", "LightningDataModule", "LightningModule", "Trainer", "seed_everything", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchbolt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer
    from torchbolt.utilities.seed import seed_everything
