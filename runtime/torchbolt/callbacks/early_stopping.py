"""`EarlyStopping`: stop fitting when a monitored metric stops improving, crosses a threshold, or turns
NaN/infinite. The reason is kept in `stopping_reason` / `stopping_reason_message` and logged."""

from __future__ import annotations

import logging
import math
from enum import Enum
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from torchbolt.callbacks.callback import Callback
from torchbolt.callbacks.checkpoint import is_fitting
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)


class EarlyStoppingReason(Enum):
    """Why EarlyStopping stopped the run (the int value is what checkpoints store)."""

    NOT_STOPPED = 0
    STOPPING_THRESHOLD = 1
    DIVERGENCE_THRESHOLD = 2
    PATIENCE_EXHAUSTED = 3
    NON_FINITE_METRIC = 4


class EarlyStopping(Callback):
    """Checks `monitor` after each validation (or at each training epoch's end) and sets
    `trainer.should_stop` when, in this order: the value is not finite (`check_finite`), it reached
    `stopping_threshold`, it crossed `divergence_threshold`, or it failed to improve by more than `min_delta`
    for `patience` checks in a row."""

    mode_dict = {"min": torch.lt, "max": torch.gt}
    order_dict = {"min": "<", "max": ">"}
    _monitoring = True  # runs its on_train_epoch_end after the LightningModule's

    def __init__(
        self,
        monitor: str,
        min_delta: float = 0.0,
        patience: int = 3,
        verbose: bool = False,
        mode: str = "min",
        strict: bool = True,
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
        check_on_train_epoch_end: bool | None = None,
        log_rank_zero_only: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise MisconfigurationException(
                f"EarlyStopping(monitor={monitor!r}) needs the name of a logged metric, e.g. monitor='val_loss'."
            )
        if mode not in self.mode_dict:
            raise MisconfigurationException(f"EarlyStopping(mode={mode!r}) is invalid: use 'min' or 'max'.")
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise MisconfigurationException(f"EarlyStopping(patience={patience!r}) must be an int >= 0.")
        if min_delta < 0:
            raise MisconfigurationException(
                f"EarlyStopping(min_delta={min_delta!r}) must be >= 0; the mode gives the direction."
            )
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.strict = strict
        self.check_finite = check_finite
        self.stopping_threshold = stopping_threshold
        self.divergence_threshold = divergence_threshold
        self._check_on_train_epoch_end = check_on_train_epoch_end
        self.log_rank_zero_only = log_rank_zero_only
        self.wait_count = 0
        self.stopped_epoch = 0
        self.stopping_reason = EarlyStoppingReason.NOT_STOPPED
        self.stopping_reason_message: str | None = None
        # stored signed: an improvement means monitor_op(current - min_delta, best)
        self.min_delta = float(min_delta) if mode == "max" else -float(min_delta)
        self.best_score: Tensor = torch.tensor(math.inf if mode == "min" else -math.inf)

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    @property
    def monitor_op(self) -> Any:
        return self.mode_dict[self.mode]

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._check_on_train_epoch_end is None:
            # validation once per epoch at its end: check after the epoch, else after each validation
            self._check_on_train_epoch_end = (
                trainer.val_check_interval == 1.0
                and trainer.check_val_every_n_epoch == 1
            )

    def state_dict(self) -> dict[str, Any]:
        return {
            "wait_count": self.wait_count,
            "stopped_epoch": self.stopped_epoch,
            "best_score": self.best_score,
            "patience": self.patience,
            "stopping_reason": self.stopping_reason.value,
            "stopping_reason_message": self.stopping_reason_message,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
        self.stopping_reason = EarlyStoppingReason(state_dict.get("stopping_reason", 0))
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    # ----------------------------------------------------------------------------------------------
    def _should_skip_check(self, trainer: Trainer) -> bool:
        return not is_fitting(trainer) or trainer.sanity_checking

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._check_on_train_epoch_end or self._should_skip_check(trainer):
            return
        self._run_early_stopping_check(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._check_on_train_epoch_end or self._should_skip_check(trainer):
            return
        self._run_early_stopping_check(trainer)

    def _validate_condition_metric(self, logs: dict[str, Any]) -> bool:
        if logs.get(self.monitor) is not None:
            return True
        available = ", ".join(f"`{k}`" for k in logs) or "(nothing was logged)"
        message = (
            f"Early stopping conditioned on metric `{self.monitor}` which is not available. Pass in or modify "
            f"your `EarlyStopping` callback to use any of the following: {available}"
        )
        if self.strict:
            raise RuntimeError(message)
        if self.verbose:
            log.warning(message)
        return False

    def _run_early_stopping_check(self, trainer: Trainer) -> None:
        logs = dict(trainer.callback_metrics)
        if trainer.fast_dev_run or not self._validate_condition_metric(logs):
            return
        current = logs[self.monitor]
        current = current.detach().squeeze() if isinstance(current, Tensor) else torch.tensor(float(current))
        should_stop, reason = self._evaluate_stopping_criteria(current)
        trainer.should_stop = trainer.should_stop or should_stop
        if should_stop:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
            # always said once: a run that ends early should say why (Lightning only says it when verbose)
            self._log(trainer, f"EarlyStopping stopped the run at epoch {trainer.current_epoch}: {reason}",
                      show=True)
        elif reason and self.verbose:
            self._log(trainer, reason, show=True)

    def _evaluate_stopping_criteria(self, current: Tensor) -> tuple[bool, str | None]:
        op = self.monitor_op
        sign = self.order_dict[self.mode]
        if self.check_finite and not torch.isfinite(current):
            self.stopping_reason = EarlyStoppingReason.NON_FINITE_METRIC
            return True, (
                f"Monitored metric {self.monitor} = {current} is not finite. Previous best value was "
                f"{float(self.best_score):.3f}. Signaling Trainer to stop."
            )
        if self.stopping_threshold is not None and op(current, self.stopping_threshold):
            self.stopping_reason = EarlyStoppingReason.STOPPING_THRESHOLD
            return True, (
                f"Stopping threshold reached: {self.monitor} = {current} {sign} {self.stopping_threshold}. "
                "Signaling Trainer to stop."
            )
        if self.divergence_threshold is not None and op(-current, -self.divergence_threshold):
            self.stopping_reason = EarlyStoppingReason.DIVERGENCE_THRESHOLD
            return True, (
                f"Divergence threshold reached: {self.monitor} = {current} "
                f"{self.order_dict['max' if self.mode == 'min' else 'min']} {self.divergence_threshold}. "
                "Signaling Trainer to stop."
            )
        if op(current - self.min_delta, self.best_score.to(current.device)):
            message = self._improvement_message(current)
            self.best_score = current
            self.wait_count = 0
            return False, message
        self.wait_count += 1
        if self.wait_count >= self.patience:
            self.stopping_reason = EarlyStoppingReason.PATIENCE_EXHAUSTED
            return True, (
                f"Monitored metric {self.monitor} did not improve in the last {self.wait_count} records. "
                f"Best score: {float(self.best_score):.3f}. Signaling Trainer to stop."
            )
        return False, None

    def _improvement_message(self, current: Tensor) -> str:
        if torch.isfinite(self.best_score):
            return (
                f"Metric {self.monitor} improved by {abs(float(self.best_score) - float(current)):.3f} >= "
                f"min_delta = {abs(self.min_delta)}. New best score: {float(current):.3f}"
            )
        return f"Metric {self.monitor} improved. New best score: {float(current):.3f}"

    def _log(self, trainer: Trainer, message: str, show: bool = False) -> None:
        """Log `message` (INFO) and, with `show`, print it through the Trainer (rank 0 only when asked)."""
        world_size = trainer.world_size
        rank = trainer.global_rank
        if world_size > 1:
            if self.log_rank_zero_only and rank != 0:
                return
            message = f"[rank: {rank}] {message}"
        log.info(message)
        if show:
            trainer.print(message)
