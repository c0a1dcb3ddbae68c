"""`Timer`: measures the time spent in each stage and stops fit once a time budget is spent.

`Trainer(max_time=...)` adds one of these; it can also be passed in `callbacks=` directly.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

#: The stages a Timer keeps clocks for (names as in Lightning's RunningStage values).
STAGES = ("train", "validate", "test", "predict", "sanity_check")
_INTERVALS = ("step", "epoch")


def parse_duration(value: str | timedelta | dict[str, int] | None, name: str = "duration") -> timedelta | None:
    """Turn 'DD:HH:MM:SS', a timedelta or a dict of timedelta arguments into a timedelta (None stays None).

    Raises ValueError/TypeError naming `name` and the accepted forms when the value is malformed.
    """
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, dict):
        try:
            return timedelta(**value)
        except TypeError as err:
            raise ValueError(
                f"{name}={value!r} is not a valid dict of timedelta arguments ({err}); use keys such as "
                "days, hours, minutes, seconds, e.g. {'hours': 1}."
            ) from None
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) == 4 and all(p.strip().isdigit() for p in parts):
            days, hours, minutes, seconds = (int(p) for p in parts)
            return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        raise ValueError(
            f"{name}={value!r} is not a valid time string; write it as 'DD:HH:MM:SS', e.g. '00:01:30:00' "
            "for one hour and a half."
        )
    raise TypeError(
        f"{name} must be a 'DD:HH:MM:SS' string, a datetime.timedelta or a dict of timedelta arguments, "
        f"got {type(value).__name__} {value!r}."
    )


class Timer(Callback):
    """Keeps a wall clock per stage and sets `trainer.should_stop` once training exceeded `duration`.

    The time is checked after every training batch (`interval='step'`) or every training epoch
    (`interval='epoch'`); elapsed time is saved in checkpoints so a resumed run keeps its budget.
    """

    def __init__(
        self,
        duration: str | timedelta | dict[str, int] | None = None,
        interval: str = "step",
        verbose: bool = True,
    ) -> None:
        if interval not in _INTERVALS:
            raise ValueError(f"Timer(interval={interval!r}) is not supported; use one of {list(_INTERVALS)}.")
        self._duration = parse_duration(duration)
        self._interval = interval
        self._verbose = verbose
        self._start: dict[str, float | None] = dict.fromkeys(STAGES)
        self._end: dict[str, float | None] = dict.fromkeys(STAGES)
        # Elapsed seconds restored from a checkpoint, added to the train clock.
        self._offset = 0.0

    @property
    def duration(self) -> timedelta | None:
        """The time budget, or None when the Timer only measures."""
        return self._duration

    def start_time(self, stage: str = "train") -> float | None:
        """When `stage` last started (time.monotonic seconds), or None if it never ran."""
        return self._start[self._check_stage(stage)]

    def end_time(self, stage: str = "train") -> float | None:
        """When `stage` last ended (time.monotonic seconds), or None if it is running or never ran."""
        return self._end[self._check_stage(stage)]

    def time_elapsed(self, stage: str = "train") -> float:
        """Seconds spent in `stage` (for 'train', including time restored from a checkpoint)."""
        stage = self._check_stage(stage)
        start, end = self._start[stage], self._end[stage]
        offset = self._offset if stage == "train" else 0.0
        if start is None:
            return offset
        return offset + ((end if end is not None else time.monotonic()) - start)

    def time_remaining(self, stage: str = "train") -> float | None:
        """Seconds left of the budget for `stage`, or None without a duration."""
        if self._duration is None:
            return None
        return self._duration.total_seconds() - self.time_elapsed(stage)

    @staticmethod
    def _check_stage(stage: Any) -> str:
        stage = getattr(stage, "value", stage)  # accept enum members too
        if stage not in STAGES:
            raise ValueError(f"Unknown stage {stage!r} for Timer; use one of {list(STAGES)}.")
        return stage

    def _begin(self, stage: str) -> None:
        self._start[stage] = time.monotonic()
        self._end[stage] = None

    def _finish(self, stage: str) -> None:
        self._end[stage] = time.monotonic()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._begin("train")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish("train")

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._begin("sanity_check" if trainer.sanity_checking else "validate")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish("sanity_check" if trainer.sanity_checking else "validate")

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._begin("test")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish("test")

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._begin("predict")

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._finish("predict")

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A budget restored from a checkpoint may already be spent: stop before the first batch.
        if self._duration is not None and self._offset > 0:
            self._check_time_remaining(trainer)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._interval == "step" and self._duration is not None:
            self._check_time_remaining(trainer)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._interval == "epoch" and self._duration is not None:
            self._check_time_remaining(trainer)

    def _check_time_remaining(self, trainer: Trainer) -> None:
        assert self._duration is not None
        if self.time_elapsed("train") >= self._duration.total_seconds():
            trainer.should_stop = True
            if self._verbose:
                elapsed = timedelta(seconds=int(self.time_elapsed("train")))
                print(f"Time limit reached: {elapsed} elapsed of {self._duration}. Stopping training.")

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {stage: self.time_elapsed(stage) for stage in STAGES}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        elapsed = state_dict.get("time_elapsed", {})
        self._offset = float(elapsed.get("train", 0.0))


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
