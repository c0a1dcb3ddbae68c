"""`GradientAccumulationScheduler`: change `accumulate_grad_batches` as epochs go by."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


def _is_overridden(name: str, module: Any) -> bool:
    from torchbolt.core.module import LightningModule

    mine = getattr(type(module), name, None)
    base = getattr(LightningModule, name, None)
    return mine is not None and base is not None and mine is not base


class GradientAccumulationScheduler(Callback):
    """`scheduling` maps a 0-based epoch to the accumulation factor used from that epoch on, e.g.
    `{0: 8, 4: 4, 8: 1}`. Epochs before the first key accumulate 1 batch."""

    def __init__(self, scheduling: dict[int, int]) -> None:
        super().__init__()
        if not isinstance(scheduling, dict) or not scheduling:
            raise TypeError(
                "GradientAccumulationScheduler(scheduling=...) needs a non-empty dict {epoch: factor}, e.g. {0: 4, 2: 1}."
            )
        bad_epochs = [k for k in scheduling if not isinstance(k, int) or isinstance(k, bool) or k < 0]
        if bad_epochs:
            raise MisconfigurationException(
                f"GradientAccumulationScheduler epochs must be ints >= 0 (0-based); got {list(scheduling)}."
            )
        bad_factors = [v for v in scheduling.values() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad_factors:
            raise MisconfigurationException(
                f"GradientAccumulationScheduler factors must be ints >= 1; got {list(scheduling.values())}."
            )
        scheduling = dict(scheduling)
        scheduling.setdefault(0, 1)
        self.scheduling = scheduling
        self.epochs = sorted(scheduling)

    def going_to_accumulate_grad_batches(self) -> bool:
        """Whether any epoch accumulates more than one batch."""
        return any(v > 1 for v in self.scheduling.values())

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        """The factor in force at `epoch`."""
        factor = 1
        for start in self.epochs:
            if epoch >= start:
                factor = self.scheduling[start]
        return factor

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not pl_module.automatic_optimization:
            raise RuntimeError(
                "GradientAccumulationScheduler works with automatic optimization only: remove the callback or "
                "set `self.automatic_optimization = True`."
            )
        overridden = _is_overridden("optimizer_step", pl_module) or _is_overridden("optimizer_zero_grad", pl_module)
        if overridden and self.going_to_accumulate_grad_batches():
            warnings.warn(
                "With gradient accumulation, your overridden `optimizer_step`/`optimizer_zero_grad` run once per "
                "optimizer step, not once per batch.",
                stacklevel=2,
            )
        if trainer.accumulate_grad_batches != 1:
            raise ValueError(
                "You set `Trainer(accumulate_grad_batches=...)` and use GradientAccumulationScheduler: keep one of "
                "them (remove the Trainer argument or the callback)."
            )

    def on_train_epoch_start(self, trainer: Trainer, *_: Any) -> None:
        trainer.accumulate_grad_batches = self.get_accumulate_grad_batches(trainer.current_epoch)
