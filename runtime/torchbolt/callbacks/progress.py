"""Terminal progress bars: `ProgressBar` (the base the Trainer looks for) and `TQDMProgressBar`.

No tqdm dependency. On a terminal the bar redraws one line in place, throttled by time so a step
costs a counter increment and a clock read; when stdout is not a terminal (CI logs, pipes) it prints
plain lines: one per finished epoch or evaluation run, and a heartbeat line during long epochs.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

#: Minimum seconds between two redraws of the in-place bar (terminal mode).
TTY_REFRESH_S = 0.1
#: Seconds between heartbeat lines inside an epoch (plain mode).
PLAIN_HEARTBEAT_S = 15.0


def stage_batches(trainer: Trainer, stage: str) -> int | float | list[int | float]:
    """The Trainer's batch count for `stage` ("train", "sanity_check", "validate", "test", "predict")."""
    if stage == "train":
        return trainer.num_training_batches
    if stage == "sanity_check":
        return trainer.num_sanity_val_batches
    if stage == "validate":
        return trainer.num_val_batches
    if stage == "test":
        return trainer.num_test_batches
    return trainer.num_predict_batches


def _total(value: Any) -> float:
    """Batch count from a trainer attribute that may be an int, a float (inf) or a list per dataloader."""
    if value is None:
        return 0
    if isinstance(value, (list, tuple)):
        return sum(_total(v) for v in value)
    return value


def _fmt_count(n: float) -> str:
    return "?" if n is None or (isinstance(n, float) and math.isinf(n)) else str(int(n))


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _fmt_value(value: Any) -> str:
    try:
        value = float(value)  # tensors and numbers alike; the only sync happens here, at redraw time
    except (TypeError, ValueError):
        return str(value)
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.3f}"


class ProgressBar(Callback):
    """Base class of progress bars; `trainer.progress_bar_callback` is the first instance of it.

    Subclasses render; the base keeps `enable()`/`disable()` and `get_metrics`, the metrics to show.
    """

    def __init__(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    @property
    def is_disabled(self) -> bool:
        return not self._enabled

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        """The values shown next to the bar: `v_num` (the logger's version) and `trainer.progress_bar_metrics`."""
        metrics: dict[str, Any] = {}
        logger = trainer.logger
        version = getattr(logger, "version", None) if logger is not None else None
        if version is not None:
            metrics["v_num"] = version[-4:] if isinstance(version, str) else version
        metrics.update(trainer.progress_bar_metrics)
        return metrics

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        """Prints a line without garbling the bar (used by `LightningModule.print`)."""
        print(*args, sep=sep, **kwargs)


class TQDMProgressBar(ProgressBar):
    """The default progress bar: epoch, step/total, elapsed<remaining, it/s, loss and `prog_bar` metrics.

    `refresh_rate` redraws at most every n batches (0 disables the bar), `leave` keeps each finished
    epoch's line on screen, `process_position` is accepted for API compatibility (one bar per process).
    """

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = False) -> None:
        super().__init__()
        for name, value in (("refresh_rate", refresh_rate), ("process_position", process_position)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TQDMProgressBar({name}={value!r}) is invalid; use an int >= 0.")
        if not isinstance(leave, bool):
            raise ValueError(f"TQDMProgressBar(leave={leave!r}) is invalid; use True or False.")
        self._refresh_rate = refresh_rate
        self._process_position = process_position
        self._leave = leave
        if refresh_rate == 0:
            self.disable()
        # Output target and mode; tests and embedders may set these before the run.
        self._stream: TextIO | None = None
        self._tty: bool | None = None
        self._reset("train", 0)
        self._saved: tuple[str, float, int, float] | None = None
        self._training = False  # between on_train_start and on_train_end: evaluation runs inside fit
        self._last_loss: Any = None
        self._line_open = False
        self._train_desc = ""

    @property
    def refresh_rate(self) -> int:
        return self._refresh_rate

    @property
    def process_position(self) -> int:
        return self._process_position

    @property
    def leave(self) -> bool:
        return self._leave

    # ------------------------------------------------------------------ output
    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    @property
    def is_tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _write_line(self, text: str, final: bool) -> None:
        """In terminal mode rewrite the current line (newline when `final`); in plain mode print a line."""
        stream = self.stream
        if self.is_tty:
            stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
            self._line_open = not final
        else:
            stream.write(text + "\n")
        stream.flush()

    def _close_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False

    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        if self._line_open:
            self.stream.write("\r\x1b[2K")
            self._line_open = False
        print(*args, sep=sep, **kwargs)

    # ------------------------------------------------------------------ counters
    def _reset(self, stage: str, total: float) -> None:
        self._stage = stage
        self._total = total
        self._n = 0
        self._t0 = self._last_draw = time.monotonic()
        # Decided once per bar, not per batch: the per-batch path is a counter and, now and then, a clock read.
        self._interval = TTY_REFRESH_S if self.is_tty else PLAIN_HEARTBEAT_S

    def _due(self) -> bool:
        """Whether a redraw is due now: every `refresh_rate` batches, and not more often than the throttle."""
        if self._n % self._refresh_rate:
            return False
        now = time.monotonic()
        if now - self._last_draw < self._interval:
            return False
        self._last_draw = now
        return True

    def _bar_text(self, desc: str, metrics: dict[str, Any] | None) -> str:
        elapsed = time.monotonic() - self._t0
        rate = self._n / elapsed if elapsed > 0 else 0.0
        total = self._total
        known = total and not (isinstance(total, float) and math.isinf(total))
        timing = _fmt_time(elapsed)
        if known and rate > 0:
            timing += "<" + _fmt_time(max(total - self._n, 0) / rate)
        text = f"{desc}: "
        if known and self.is_tty:
            frac = min(self._n / total, 1.0)
            width = 20
            filled = int(frac * width)
            text += f"{frac * 100:3.0f}%|{'█' * filled}{' ' * (width - filled)}| "
        text += f"{self._n}/{_fmt_count(total)} [{timing}, {rate:.2f}it/s]"
        if metrics:
            text += " " + " ".join(f"{k}={_fmt_value(v)}" for k, v in metrics.items())
        return text

    def _train_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        outputs = self._last_loss
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            metrics["loss"] = loss
        metrics.update(self.get_metrics(trainer, pl_module))
        return metrics

    # ------------------------------------------------------------------ training
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last_loss = None
        self._training = True

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        max_epochs = trainer.max_epochs
        epochs = f"/{max_epochs}" if isinstance(max_epochs, int) and max_epochs > 0 else ""
        self._train_desc = f"Epoch {trainer.current_epoch + 1}{epochs}"
        self._reset("train", _total(trainer.num_training_batches))

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._enabled:
            return
        self._n += 1
        # Keep a reference only; reading the loss (a device sync) waits for the next redraw.
        if outputs is not None:
            self._last_loss = outputs
        if self._due():
            self._write_line(self._bar_text(self._train_desc, self._train_metrics(trainer, pl_module)), False)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        text = self._bar_text(self._train_desc, self._train_metrics(trainer, pl_module))
        if self.is_tty and not self._leave:
            self._write_line(text, False)  # the next epoch overwrites it; on_train_end closes the last
        else:
            self._write_line(text, True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._training = False
        self._close_line()

    # ------------------------------------------------------------------ evaluation
    def _eval_start(self, stage: str, total: Any) -> None:
        if self.is_disabled:
            return
        self._saved = (self._stage, self._total, self._n, self._t0) if self._training else None
        self._reset(stage, _total(total))

    def _eval_batch(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        self._n += 1
        if self._n == 1 and not self._total:
            # The eval loop may count its batches only after its start hook ran: read the total now.
            self._total = _total(stage_batches(trainer, self._stage))
        if self.is_tty and self._due():
            self._write_line(self._bar_text(self._eval_desc(trainer), None), False)

    def _eval_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        in_fit = self._saved is not None
        if self.is_tty:
            if in_fit:
                self._write_line(self._bar_text(self._eval_desc(trainer), None), False)
            else:
                self._write_line(self._bar_text(self._eval_desc(trainer), self.get_metrics(trainer, pl_module)),
                                 True)
        elif not in_fit and self._stage != "sanity_check":
            self._write_line(self._bar_text(self._eval_desc(trainer), self.get_metrics(trainer, pl_module)), True)
        if in_fit:
            # Back to the training bar, with the counters it had before validation started.
            self._stage, self._total, self._n, self._t0 = self._saved
            self._saved = None

    def _eval_desc(self, trainer: Trainer) -> str:
        return {"sanity_check": "Sanity Checking", "validate": "Validation", "test": "Testing",
                "predict": "Predicting"}[self._stage]

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("sanity_check", trainer.num_sanity_val_batches)
        self._saved = None

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        if self._line_open:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._line_open = False

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return  # on_sanity_check_start already set the sanity bar up
        self._eval_start("validate", trainer.num_val_batches)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._eval_end(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("test", trainer.num_test_batches)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch(trainer, pl_module)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end(trainer, pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("predict", trainer.num_predict_batches)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch(trainer, pl_module)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end(trainer, pl_module)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._training = False
        self._close_line()


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
