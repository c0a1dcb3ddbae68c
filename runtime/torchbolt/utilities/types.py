"""Type aliases that Lightning code annotates with (`STEP_OUTPUT`, `OptimizerLRScheduler`, ...)."""

# No `from __future__ import annotations` here: the TypedDicts below must see NotRequired[...] as
# objects, not strings, to mark their optional keys.

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from typing_extensions import NotRequired, TypedDict

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr

__all__ = [
    "EVAL_DATALOADERS", "LRSchedulerConfig", "LRSchedulerConfigType", "LRSchedulerPLType", "LRSchedulerTypeTuple",
    "LRSchedulerTypeUnion", "OptimizerConfig", "OptimizerLRScheduler", "OptimizerLRSchedulerConfig",
    "STEP_OUTPUT", "TRAIN_DATALOADERS",
]

_NUMBER = int | float
_METRIC = Tensor | _NUMBER
#: What `training_step` & co. may return: a loss tensor, a mapping with a "loss" key, or None.
STEP_OUTPUT = Tensor | Mapping[str, Any] | None
_EVALUATE_OUTPUT = list[Mapping[str, float]]
_PREDICT_OUTPUT = list[Any] | list[list[Any]]
TRAIN_DATALOADERS = Any  # an iterable, or a collection of iterables
EVAL_DATALOADERS = Any

LRSchedulerTypeTuple = (LRScheduler, ReduceLROnPlateau)
LRSchedulerTypeUnion = LRScheduler | ReduceLROnPlateau
LRSchedulerType = type[LRScheduler] | type[ReduceLROnPlateau]
LRSchedulerPLType = LRScheduler | ReduceLROnPlateau


class LRSchedulerConfigType(TypedDict):
    """The `lr_scheduler` dict of `configure_optimizers`, every key present."""

    scheduler: LRSchedulerTypeUnion
    name: str | None
    interval: str
    frequency: int
    reduce_on_plateau: bool
    monitor: str | None
    strict: bool


class LRSchedulerConfig(TypedDict):
    """The `lr_scheduler` dict of `configure_optimizers`, as users write it (only `scheduler` required)."""

    scheduler: LRSchedulerTypeUnion
    name: NotRequired[str | None]
    interval: NotRequired[str]
    frequency: NotRequired[int]
    reduce_on_plateau: NotRequired[bool]
    monitor: NotRequired[str | None]
    strict: NotRequired[bool]


class OptimizerConfig(TypedDict):
    optimizer: Optimizer


class OptimizerLRSchedulerConfig(TypedDict):
    optimizer: Optimizer
    lr_scheduler: NotRequired[LRSchedulerTypeUnion | LRSchedulerConfig]
    monitor: NotRequired[str]


#: Everything `configure_optimizers` may return.
OptimizerLRScheduler = (
    Optimizer
    | Sequence[Optimizer]
    | tuple[Sequence[Optimizer], Sequence[LRSchedulerTypeUnion | LRSchedulerConfig]]
    | OptimizerConfig
    | OptimizerLRSchedulerConfig
    | Sequence[OptimizerConfig]
    | Sequence[OptimizerLRSchedulerConfig]
    | None
)


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
