"""Explicit run state: what the Trainer is doing, and the loop progress counters checkpoints hold.

Nothing outside the Trainer writes these; checkpoints read and restore them through `LoopState.state_dict()`
/ `load_state_dict()`, in Lightning's `loops` format so that Lightning and torchbolt checkpoints interoperate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.value == other.lower()
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash(self.value)


class TrainerFn(_StrEnum):
    """The entry point being run."""

    FITTING = "fit"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"


class RunningStage(_StrEnum):
    """The loop currently running inside an entry point."""

    TRAINING = "train"
    SANITY_CHECKING = "sanity_check"
    VALIDATING = "validate"
    TESTING = "test"
    PREDICTING = "predict"

    @property
    def evaluating(self) -> bool:
        return self in (RunningStage.VALIDATING, RunningStage.TESTING, RunningStage.SANITY_CHECKING)

    @property
    def dataloader_prefix(self) -> str | None:
        if self == RunningStage.SANITY_CHECKING:
            return "val"
        if self == RunningStage.VALIDATING:
            return "val"
        return self.value


class TrainerStatus(_StrEnum):
    """Whether the Trainer is idle, running, done or was interrupted."""

    INITIALIZING = "initializing"
    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"

    @property
    def stopped(self) -> bool:
        return self in (TrainerStatus.FINISHED, TrainerStatus.INTERRUPTED)


@dataclass
class TrainerState:
    """`trainer.state`: status, entry point (fn) and running stage."""

    status: TrainerStatus = TrainerStatus.INITIALIZING
    fn: TrainerFn | None = None
    stage: RunningStage | None = None

    @property
    def finished(self) -> bool:
        return self.status == TrainerStatus.FINISHED

    @property
    def stopped(self) -> bool:
        return self.status.stopped


# --------------------------------------------------------------------------------------------------
# Progress counters (Lightning's loops/progress.py format)
# --------------------------------------------------------------------------------------------------
@dataclass
class ReadyCompleted:
    """Counts of items made ready and completed."""

    ready: int = 0
    completed: int = 0

    def reset(self) -> None:
        self.ready = 0
        self.completed = 0

    def state_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key in self.__dict__:
            if key in state:
                setattr(self, key, int(state[key]))


@dataclass
class StartedTracker(ReadyCompleted):
    """Adds a `started` count."""

    started: int = 0

    def reset(self) -> None:
        super().reset()
        self.started = 0


@dataclass
class ProcessedTracker(StartedTracker):
    """Adds a `processed` count."""

    processed: int = 0

    def reset(self) -> None:
        super().reset()
        self.processed = 0


def _ordered(tracker: ReadyCompleted) -> dict[str, int]:
    order = ("ready", "started", "processed", "completed")
    return {k: getattr(tracker, k) for k in order if hasattr(tracker, k)}


@dataclass
class Progress:
    """A `total` tracker (over the whole run) and a `current` one (reset per epoch / loop run)."""

    # Any: the concrete tracker (ReadyCompleted / StartedTracker / ProcessedTracker) varies per counter.
    total: Any
    current: Any

    @classmethod
    def make(cls, tracker: type[ReadyCompleted]) -> Progress:
        return cls(tracker(), tracker())

    def increment(self, what: str) -> None:
        # Called several times per step: plain dict updates instead of getattr/setattr pairs.
        self.total.__dict__[what] += 1
        self.current.__dict__[what] += 1

    def reset_current(self) -> None:
        self.current.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"total": _ordered(self.total), "current": _ordered(self.current)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total.load_state_dict(state.get("total", {}))
        self.current.load_state_dict(state.get("current", {}))


@dataclass
class BatchProgress(Progress):
    """Batch counters plus whether the last batch of the epoch was reached."""

    is_last_batch: bool = False

    @classmethod
    def make(cls, tracker: type[ReadyCompleted] = ProcessedTracker) -> BatchProgress:
        return cls(tracker(), tracker())

    def reset_current(self) -> None:
        super().reset_current()
        self.is_last_batch = False

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "is_last_batch": self.is_last_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.is_last_batch = bool(state.get("is_last_batch", False))


@dataclass
class OptimizerProgress:
    """Optimizer step and zero_grad counters of automatic optimization."""

    step: Progress = field(default_factory=lambda: Progress.make(ReadyCompleted))
    zero_grad: Progress = field(default_factory=lambda: Progress.make(StartedTracker))

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": {"step": self.step.state_dict(), "zero_grad": self.zero_grad.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        opt = state.get("optimizer", {})
        self.step.load_state_dict(opt.get("step", {}))
        self.zero_grad.load_state_dict(opt.get("zero_grad", {}))


@dataclass
class FitProgress:
    """Counters of trainer.fit: epochs, batches, optimizer steps, scheduler steps, in-fit validation batches."""

    epoch: Progress = field(default_factory=lambda: Progress.make(ProcessedTracker))
    batch: BatchProgress = field(default_factory=BatchProgress.make)
    scheduler: Progress = field(default_factory=lambda: Progress.make(ReadyCompleted))
    optim: OptimizerProgress = field(default_factory=OptimizerProgress)
    manual_step: Progress = field(default_factory=lambda: Progress.make(ReadyCompleted))
    val_batch: BatchProgress = field(default_factory=BatchProgress.make)
    batches_that_stepped: int = 0
    # Extra state torchbolt keeps for exact mid-epoch resume (ignored by Lightning when it loads the file).
    resume: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoopState:
    """Everything the loops own: the progress counters (`state_dict()` is the checkpoint's `loops` entry)
    and the run-time position the loops keep between calls (not saved, except through `fit.resume`)."""

    fit: FitProgress = field(default_factory=FitProgress)
    validate_batch: BatchProgress = field(default_factory=BatchProgress.make)
    test_batch: BatchProgress = field(default_factory=BatchProgress.make)
    predict_batch: Progress = field(default_factory=lambda: Progress.make(ProcessedTracker))  # no is_last_batch
    # -- run-time only ---------------------------------------------------------------------------
    #: where fit continues after a checkpoint was restored (None: from the start)
    resume_point: dict[str, Any] | None = None
    #: a checkpoint's counters were loaded in this run (no sanity check then, as in Lightning)
    restored: bool = False
    #: validation runs every this many training batches (inf: at epoch end; None: time-based)
    val_check_batch: int | float | None = float("inf")
    #: monotonic time of the last validation run (time-based val_check_interval)
    last_val_time: float = 0.0
    #: the current (or last) validation run inside fit processed a batch (not counting the sanity check)
    val_has_run: bool = False
    #: logger step counter per (stage, dataloader) for step-level evaluation metrics
    eval_steps: dict[tuple[str, int], int] = field(default_factory=dict)

    def begin_run(self) -> None:
        """Forget the previous entry point's restore position."""
        self.resume_point = None
        self.restored = False

    def next_eval_step(self, stage: str, dataloader_idx: int) -> int:
        """The logger step for the next step-level metrics of `stage`'s dataloader (counts from 0)."""
        key = (stage, dataloader_idx)
        step = self.eval_steps.get(key, 0)
        self.eval_steps[key] = step + 1
        return step

    def load_resume_point(self, loops: dict[str, Any], fn: str | None) -> None:
        """Load a checkpoint's `loops` entry and, for fit, derive where training continues."""
        self.load_state_dict(loops)
        self.restored = True
        if fn not in (None, "fit"):
            return
        resume = dict(self.fit.resume)
        if "epoch" not in resume:  # a Lightning-written checkpoint: derive the position from counters
            fit = self.fit
            finished = fit.epoch.current.processed > fit.epoch.current.completed or fit.batch.is_last_batch
            resume = {
                "epoch": fit.epoch.current.processed if not finished else fit.epoch.current.processed - 1,
                "batches_done": 0 if finished else fit.batch.current.processed,
                "epoch_finished": finished,
            }
        self.resume_point = resume

    def state_dict(self) -> dict[str, Any]:
        fit = self.fit
        return {
            "fit_loop": {
                "state_dict": dict(fit.resume),
                "epoch_loop.state_dict": {"_batches_that_stepped": fit.batches_that_stepped},
                "epoch_loop.batch_progress": fit.batch.state_dict(),
                "epoch_loop.scheduler_progress": fit.scheduler.state_dict(),
                "epoch_loop.automatic_optimization.state_dict": {},
                "epoch_loop.automatic_optimization.optim_progress": fit.optim.state_dict(),
                "epoch_loop.manual_optimization.state_dict": {},
                "epoch_loop.manual_optimization.optim_step_progress": fit.manual_step.state_dict(),
                "epoch_loop.val_loop.state_dict": {},
                "epoch_loop.val_loop.batch_progress": fit.val_batch.state_dict(),
                "epoch_progress": fit.epoch.state_dict(),
            },
            "validate_loop": {"state_dict": {}, "batch_progress": self.validate_batch.state_dict()},
            "test_loop": {"state_dict": {}, "batch_progress": self.test_batch.state_dict()},
            "predict_loop": {"state_dict": {}, "batch_progress": self.predict_batch.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        fit_state = state.get("fit_loop", {})
        fit = self.fit
        fit.resume = dict(fit_state.get("state_dict", {}) or {})
        fit.batches_that_stepped = int(
            fit_state.get("epoch_loop.state_dict", {}).get("_batches_that_stepped", 0)
        )
        fit.batch.load_state_dict(fit_state.get("epoch_loop.batch_progress", {}))
        fit.scheduler.load_state_dict(fit_state.get("epoch_loop.scheduler_progress", {}))
        fit.optim.load_state_dict(fit_state.get("epoch_loop.automatic_optimization.optim_progress", {}))
        fit.manual_step.load_state_dict(fit_state.get("epoch_loop.manual_optimization.optim_step_progress", {}))
        fit.val_batch.load_state_dict(fit_state.get("epoch_loop.val_loop.batch_progress", {}))
        fit.epoch.load_state_dict(fit_state.get("epoch_progress", {}))
        for key, progress in (("validate_loop", self.validate_batch), ("test_loop", self.test_batch),
                              ("predict_loop", self.predict_batch)):
            progress.load_state_dict(state.get(key, {}).get("batch_progress", {}))


@dataclass
class StopSignal:
    """A SIGINT/SIGTERM received during fit: written by the Trainer's signal handler, read by the loops,
    which stop at the next step boundary (or after the current validation batch) by `raise_pending()`."""

    signum: int | None = None  # pending: not yet turned into an exception
    received: int | None = None  # the last signal of the run (kept for `trainer.received_sigterm`)
    count: int = 0

    def reset(self) -> None:
        self.signum = self.received = None
        self.count = 0

    def receive(self, signum: int) -> None:
        self.count += 1
        self.signum = self.received = signum

    def raise_pending(self) -> None:
        """Turn a received signal into the exception that unwinds fit (KeyboardInterrupt / SystemExit)."""
        import signal

        signum = self.signum
        if signum is None:
            return
        self.signum = None
        if signum == signal.SIGINT:
            raise KeyboardInterrupt("fit interrupted by SIGINT (Ctrl+C); the current step finished first")
        raise SystemExit(128 + int(signum))
