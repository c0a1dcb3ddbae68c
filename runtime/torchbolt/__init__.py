"""torchbolt: a fast training runtime with Lightning 2.x's public API.

Attributes are imported lazily (PEP 562) so that `import torchbolt.catalog` (used by the language
server) never imports torch, and `import torchbolt` stays cheap: `torchbolt.Trainer` imports the
trainer on first use, `torchbolt.callbacks` (or `.loggers`, `.utilities`, `.strategies`, `.demos`, ...)
imports that subpackage on first use, as `import lightning.pytorch as pl; pl.callbacks` works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchbolt._lazy import lazy_getattr

__version__ = "0.1.0"

_LAZY = {
    "LightningModule": "torchbolt.core.module",
    "LightningDataModule": "torchbolt.core.datamodule",
    "Callback": "torchbolt.callbacks.callback",
    "Trainer": "torchbolt.trainer.trainer",
    "seed_everything": "torchbolt.utilities.seed",
    "cli_lightning_logo": "torchbolt.demos.logo",
    "LIGHTNING_LOGO": "torchbolt.demos.logo",
}
__all__ = ["Callback", "LightningDataModule", "LightningModule", "Trainer", "seed_everything", "__version__"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer
    from torchbolt.utilities.seed import seed_everything
