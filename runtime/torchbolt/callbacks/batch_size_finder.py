"""BatchSizeFinder: find the largest batch size that fits when fit starts, then train with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


class BatchSizeFinder(Callback):
    """At the start of fit, grows `<batch_arg_name>` on the module (or its hparams / the DataModule) by
    doubling (`mode="power"`) or binary search (`"binsearch"`), with trials of `steps_per_trial` steps,
    until memory runs out, `max_trials` or `max_val` is reached, or one batch covers the dataset. The
    result is left set and kept in `self.optimal_batch_size`; weights and progress are restored."""

    SUPPORTED_MODES = ("power", "binsearch")

    def __init__(self, mode: str = "power", steps_per_trial: int = 3, init_val: int = 2, max_trials: int = 25,
                 batch_arg_name: str = "batch_size", margin: float = 0.05, max_val: int = 8192) -> None:
        mode = mode.lower()
        if mode not in self.SUPPORTED_MODES:
            raise ValueError(f"`mode` should be either of {self.SUPPORTED_MODES}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"`margin` should be between 0 and 1. Found margin={margin!r}")
        self.optimal_batch_size: int | None = init_val
        self._mode = mode
        self._steps_per_trial = steps_per_trial
        self._init_val = init_val
        self._max_trials = max_trials
        self._batch_arg_name = batch_arg_name
        self._margin = margin
        self._max_val = max_val
        self._early_exit = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            raise MisconfigurationException(
                f"BatchSizeFinder runs at the start of fit in this build of torchbolt (got stage {stage!r}); use it "
                "with trainer.fit, the batch size found applies to evaluation too."
            )

    def scale_batch_size(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from torchbolt.tuner.batch_size_scaling import scale_batch_size

        self.optimal_batch_size = scale_batch_size(
            trainer, mode=self._mode, steps_per_trial=self._steps_per_trial, init_val=self._init_val,
            max_trials=self._max_trials, batch_arg_name=self._batch_arg_name, margin=self._margin,
            max_val=self._max_val)
        if self._early_exit:
            from torchbolt.tuner.tuning import TunerExit

            raise TunerExit()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.scale_batch_size(trainer, pl_module)
