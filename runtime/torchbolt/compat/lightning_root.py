"""What `import lightning` gives inside torchbolt's processes (see `torchbolt.compat.hook`).

`L.LightningModule`, `L.LightningDataModule`, `L.Callback`, `L.Trainer`, `L.seed_everything` and
`L.pytorch` (which is torchbolt); `L.Fabric` / `L.fabric` raise an error saying torchbolt does not
provide Lightning Fabric.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchbolt.compat.paths import OTHER_LIGHTNING_PACKAGES

# A package, so that `lightning.pytorch` can be imported below it; its submodules come from the hook.
__path__: list[str] = []

__all__ = ["Callback", "LightningDataModule", "LightningModule", "Trainer", "seed_everything"]


def __getattr__(name: str) -> Any:
    if name in __all__ or name == "__version__":
        return getattr(importlib.import_module("torchbolt"), name)
    if name == "pytorch":
        return importlib.import_module("lightning.pytorch")
    if name in ("Fabric", "fabric"):
        from torchbolt.compat.unsupported import NotProvidedError

        raise NotProvidedError(f"lightning.{name} is not provided by torchbolt: {OTHER_LIGHTNING_PACKAGES['fabric']}.")
    raise AttributeError(f"module 'lightning' (torchbolt) has no attribute {name!r}; it provides "
                         f"{', '.join(__all__)} and lightning.pytorch")


def __dir__() -> list[str]:
    return sorted([*__all__, "pytorch"])


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer
    from torchbolt.utilities.seed import seed_everything
