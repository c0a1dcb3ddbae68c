"""`torchbolt.cli`: `LightningCLI` and its parser, at Lightning's `lightning.pytorch.cli` path.

Names are imported lazily (jsonargparse and torch load on first use), so `torchbolt.cli.command`, the
`torchbolt` command line, starts without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchbolt._lazy import lazy_getattr

_LIGHTNING_CLI = "torchbolt.cli.lightning_cli"
_LAZY = {
    "LightningCLI": _LIGHTNING_CLI,
    "LightningArgumentParser": _LIGHTNING_CLI,
    "SaveConfigCallback": _LIGHTNING_CLI,
    "OptimizerCallable": _LIGHTNING_CLI,
    "LRSchedulerCallable": _LIGHTNING_CLI,
    "LRSchedulerType": _LIGHTNING_CLI,
    "LRSchedulerTypeTuple": _LIGHTNING_CLI,
    "LRSchedulerTypeUnion": _LIGHTNING_CLI,
    "ReduceLROnPlateau": _LIGHTNING_CLI,
    "ArgsType": _LIGHTNING_CLI,
    "instantiate_class": _LIGHTNING_CLI,
    "instantiate_module": _LIGHTNING_CLI,
    "main": "torchbolt.cli.command",
}
__all__ = [
    "ArgsType", "LRSchedulerCallable", "LRSchedulerType", "LRSchedulerTypeTuple", "LRSchedulerTypeUnion", "LightningArgumentParser",
    "LightningCLI", "OptimizerCallable", "ReduceLROnPlateau", "SaveConfigCallback", "instantiate_class", "instantiate_module",
    "main",
]
assert set(__all__) == set(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())  # Lightning's names torchbolt lacks get their alternative


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.cli.command import main
    from torchbolt.cli.lightning_cli import (
        ArgsType,
        LightningArgumentParser,
        LightningCLI,
        LRSchedulerCallable,
        LRSchedulerType,
        LRSchedulerTypeTuple,
        LRSchedulerTypeUnion,
        OptimizerCallable,
        ReduceLROnPlateau,
        SaveConfigCallback,
        instantiate_class,
        instantiate_module,
    )
