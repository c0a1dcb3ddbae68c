"""torchbolt: a fast training runtime with Lightning 2.x's public API.

Attributes are imported lazily (PEP 562) so that `import torchbolt.catalog` (used by the language
server) never imports torch, and `import torchbolt` stays cheap: `torchbolt.Trainer` imports the
trainer on first use, `torchbolt.callbacks` (or `.loggers`, `.utilities`, `.strategies`, `.demos`, ...)
imports that subpackage on first use, as `import lightning.pytorch as pl; pl.callbacks` works.
"""

from __future__ import annotations

import importlib
import importlib.util
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


def _attribute(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    # A subpackage (callbacks, loggers, utilities, strategies, demos, cli, ...): whichever exist.
    if name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)


def __getattr__(name: str) -> Any:
    from torchbolt.compat.unsupported import module_getattr

    value = module_getattr(__name__, _attribute)(name)
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
