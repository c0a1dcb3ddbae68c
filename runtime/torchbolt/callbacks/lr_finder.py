"""LearningRateFinder: run the learning-rate range test when fit starts, then train with the suggestion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer
    from torchbolt.tuner.lr_finder import _LRFinder


class LearningRateFinder(Callback):
    """At the start of fit, trains `num_training_steps` steps with a growing learning rate, restores the
    model, and (with `update_attr`) sets the suggested lr on the module and the optimizer. The result is
    `self.optimal_lr` (`.suggestion()`, `.plot()`). Override `on_fit_start` to run it at other times."""

    SUPPORTED_MODES = ("linear", "exponential")

    def __init__(self, min_lr: float = 1e-8, max_lr: float = 1, num_training_steps: int = 100,
                 mode: str = "exponential", early_stop_threshold: float | None = 4.0, update_attr: bool = True,
                 attr_name: str = "") -> None:
        mode = mode.lower()
        if mode not in self.SUPPORTED_MODES:
            raise ValueError(f"`mode` should be either of {self.SUPPORTED_MODES}")
        self._min_lr = min_lr
        self._max_lr = max_lr
        self._num_training_steps = num_training_steps
        self._mode = mode
        self._early_stop_threshold = early_stop_threshold
        self._update_attr = update_attr
        self._attr_name = attr_name
        self._early_exit = False
        self.optimal_lr: _LRFinder | None = None

    def lr_find(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from torchbolt.tuner.lr_finder import lr_find

        self.optimal_lr = lr_find(trainer, pl_module, min_lr=self._min_lr, max_lr=self._max_lr,
                                  num_training=self._num_training_steps, mode=self._mode,
                                  early_stop_threshold=self._early_stop_threshold, update_attr=self._update_attr,
                                  attr_name=self._attr_name)
        if self._early_exit:
            from torchbolt.tuner.tuning import TunerExit

            raise TunerExit()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.lr_find(trainer, pl_module)


