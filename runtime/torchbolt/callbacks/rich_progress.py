"""RichProgressBar and RichModelSummary: the progress bar and the layer table drawn with `rich` (optional)."""

from __future__ import annotations

import functools
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torchbolt.callbacks.model_summary import ModelSummary, _human, summarize
from torchbolt.callbacks.progress import ProgressBar, TQDMProgressBar, _fmt_value, _total

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


def _rich_available() -> bool:
    return importlib.util.find_spec("rich") is not None


def _or_plain(hook: Callable[..., Any]) -> Callable[..., Any]:
    """The hook of the plain bar when the output is not a terminal (see RichProgressBar), else `hook`."""
    name = hook.__name__

    @functools.wraps(hook)
    def run(self: RichProgressBar, *args: Any, **kwargs: Any) -> Any:
        plain = self._plain
        if plain is not None:
            return getattr(plain, name)(*args, **kwargs)
        return hook(self, *args, **kwargs)

    return run


@dataclass
class RichProgressBarTheme:
    """Styles of the bar's parts (any rich style string)."""

    description: str = ""
    progress_bar: str = "#6206E0"
    progress_bar_finished: str = "#6206E0"
    progress_bar_pulse: str = "#6206E0"
    batch_progress: str = ""
    time: str = "dim"
    processing_speed: str = "dim underline"
    metrics: str = "italic"
    metrics_text_delimiter: str = " "
    metrics_format: str = ".3f"


class RichProgressBar(ProgressBar):
    """A progress bar drawn by `rich`: one bar for training and one for the running evaluation, with the
    metrics beside them, redrawn at most `refresh_rate` times a second. Needs `pip install rich`;
    `leave=True` keeps every epoch's bar.

    When the output is not a terminal (a pipe, a CI log, the editor's output panel) a live display shows
    nothing until it ends and re-wraps everything printed meanwhile, so the bar prints what
    `TQDMProgressBar` prints there instead: one plain line per finished epoch or run.
    """

    def __init__(self, refresh_rate: int = 100, leave: bool = False,
                 theme: RichProgressBarTheme = RichProgressBarTheme(),  # noqa: B008 - Lightning's default
                 console_kwargs: dict[str, Any] | None = None) -> None:
        if not _rich_available():
            raise ModuleNotFoundError(
                "`RichProgressBar` requires `rich` >= 10.2.2. Install it by running `pip install -U rich`."
            )
        super().__init__()
        if not isinstance(refresh_rate, int) or isinstance(refresh_rate, bool) or refresh_rate < 0:
            raise ValueError(f"RichProgressBar(refresh_rate={refresh_rate!r}) is invalid; use an int >= 0.")
        self._refresh_rate = refresh_rate
        self._leave = leave
        self.theme = theme
        self._console_kwargs = console_kwargs or {}
        self.progress: Any = None
        self._train_task: Any = None
        self._eval_task: Any = None
        self._metrics_task: Any = None
        self._last_loss: Any = None
        self._train_n = 0
        self._last_refresh = 0.0
        #: the plain bar that stands in when the console is not a terminal (decided in setup)
        self._plain: TQDMProgressBar | None = None
        if refresh_rate == 0:
            self.disable()

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._plain is not None or self.progress is not None:
            return
        from rich.console import Console

        if not Console(**self._console_kwargs).is_terminal:
            plain = TQDMProgressBar(leave=self._leave)
            if self.is_disabled:
                plain.disable()
            self._plain = plain

    def enable(self) -> None:
        super().enable()
        if self._plain is not None:
            self._plain.enable()

    def disable(self) -> None:
        super().disable()
        if self._plain is not None:
            self._plain.disable()

    @property
    def refresh_rate(self) -> int:
        return self._refresh_rate

    def _ensure(self) -> Any:
        if self.progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            console = Console(**self._console_kwargs)
            self.progress = Progress(
                TextColumn("[progress.description]{task.description}", style=self.theme.description),
                BarColumn(complete_style=self.theme.progress_bar, finished_style=self.theme.progress_bar_finished,
                          pulse_style=self.theme.progress_bar_pulse),
                TextColumn("{task.completed}/{task.total}", style=self.theme.batch_progress),
                TimeElapsedColumn(), TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}", style=self.theme.metrics),
                console=console, transient=not self._leave, auto_refresh=False,
            )
            self.progress.start()
        return self.progress

    def _metrics_text(self, metrics: dict[str, Any]) -> str:
        return self.theme.metrics_text_delimiter.join(f"{k}: {_fmt_value(v)}" for k, v in metrics.items())

    def _due(self) -> bool:
        """Whether a redraw is due (refresh_rate is per second). Between redraws a batch costs a clock read:
        the metrics (which may need a device sync) are read only for a redraw."""
        now = time.monotonic()
        if now - self._last_refresh < 1.0 / max(self._refresh_rate, 1):
            return False
        self._last_refresh = now
        return True

    def _advance(self, task: Any, n_done: int, metrics: dict[str, Any] | None) -> None:
        progress = self._ensure()
        fields = {} if metrics is None else {"metrics": self._metrics_text(metrics)}
        progress.update(task, completed=n_done, **fields)
        progress.refresh()

    def _train_metrics(self, trainer: Trainer, pl_module: LightningModule, outputs: Any) -> dict[str, Any]:
        metrics = self.get_metrics(trainer, pl_module)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        return {"loss": loss, **metrics} if loss is not None else metrics

    @_or_plain
    def print(self, *args: Any, sep: str = " ", **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.console.print(*args, sep=sep, **kwargs)
        else:
            print(*args, sep=sep, **kwargs)

    # ---- training -----------------------------------------------------------------------------
    @_or_plain
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pass  # the rich bar starts with the first epoch

    @_or_plain
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_disabled:
            return
        progress = self._ensure()
        self._train_n = 0
        total = _total(trainer.num_training_batches)
        desc = f"Epoch {trainer.current_epoch}/{trainer.max_epochs - 1}" if trainer.max_epochs > 0 \
            else f"Epoch {trainer.current_epoch}"
        if self._train_task is not None and not self._leave:
            progress.reset(self._train_task, total=total, description=desc, completed=0, metrics="")
        else:
            self._train_task = progress.add_task(desc, total=total, metrics="")
        progress.refresh()

    @_or_plain
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.is_disabled or self._train_task is None:
            return
        self._last_loss = outputs
        self._train_n = batch_idx + 1
        if self._due():
            self._advance(self._train_task, batch_idx + 1, self._train_metrics(trainer, pl_module, outputs))

    @_or_plain
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # the epoch's last batches may have come between two redraws: show where it ended
        if self.is_disabled or self._train_task is None:
            return
        self._advance(self._train_task, self._train_n, self._train_metrics(trainer, pl_module, self._last_loss))

    @_or_plain
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stop()

    # ---- evaluation ---------------------------------------------------------------------------
    def _eval_start(self, desc: str, total: Any) -> None:
        if self.is_disabled:
            return
        progress = self._ensure()
        self._eval_task = progress.add_task(desc, total=_total(total), metrics="")

    def _eval_batch(self, batch_idx: int) -> None:
        if self.is_disabled or self._eval_task is None or not self._due():
            return
        self._advance(self._eval_task, batch_idx + 1, None)

    def _eval_end(self) -> None:
        if self.progress is not None and self._eval_task is not None:
            self.progress.remove_task(self._eval_task)  # evaluation bars never stay
            self.progress.refresh()
        self._eval_task = None

    @_or_plain
    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("Sanity Checking", sum(_total(n) for n in trainer.num_sanity_val_batches))

    @_or_plain
    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end()

    @_or_plain
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._eval_start("Validation", sum(_total(n) for n in trainer.num_val_batches))

    @_or_plain
    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch(batch_idx)

    @_or_plain
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._eval_end()
            if self._train_task is not None and self.progress is not None:
                self.progress.update(self._train_task, metrics=self._metrics_text(self.get_metrics(trainer, pl_module)))

    @_or_plain
    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("Testing", sum(_total(n) for n in trainer.num_test_batches))

    @_or_plain
    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch(batch_idx)

    @_or_plain
    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end()
        self._stop()

    @_or_plain
    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_start("Predicting", sum(_total(n) for n in trainer.num_predict_batches))

    @_or_plain
    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch(batch_idx)

    @_or_plain
    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._eval_end()
        self._stop()

    @_or_plain
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.progress is not None:
            self.progress.refresh()
            self.progress.stop()
        self.progress = None
        self._train_task = self._eval_task = None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def __getstate__(self) -> dict[str, Any]:
        # the live rich display cannot be pickled (deepcopy of callbacks, spawn)
        state = self.__dict__.copy()
        state["progress"] = None
        return state


class RichModelSummary(ModelSummary):
    """The model summary as a `rich` table (needs `pip install rich`)."""

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        if not _rich_available():
            raise ModuleNotFoundError(
                "`RichModelSummary` requires `rich` to be installed. Install it by running `pip install -U rich`."
            )
        super().__init__(max_depth=max_depth)
        self._summarize_kwargs = summarize_kwargs

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._max_depth == 0 or not trainer.is_global_zero:
            return
        from rich import get_console
        from rich.table import Table

        summary = summarize(pl_module, self._max_depth)
        self.last_summary = summary
        table = Table(header_style="bold magenta")
        columns = ["", "Name", "Type", "Params", "Mode"] + (["In sizes", "Out sizes"] if summary.has_sizes else [])
        for col in columns:
            table.add_column(col, justify="right" if col in ("", "Params") else "left")
        for i, row in enumerate(summary.rows):
            cells = [str(i), row.name, row.type, _human(row.params), row.mode]
            if summary.has_sizes:
                cells += [row.in_size, row.out_size]
            table.add_row(*cells)
        console = get_console()
        console.print(table)
        totals = [
            (_human(summary.trainable), "Trainable params"),
            (_human(summary.non_trainable), "Non-trainable params"),
            (_human(summary.total), "Total params"),
            (f"{summary.size_mb:.3f}", "Total estimated model params size (MB)"),
            (str(summary.train_modules), "Modules in train mode"),
            (str(summary.eval_modules), "Modules in eval mode"),
        ]
        for value, label in totals:
            console.print(f"[bold]{label}[/]: {value}")
