"""The Trainer: validates its arguments, prepares the run, then hands control to the loop.

Arguments are checked against `torchbolt.catalog` (a frozen pydantic `TrainerConfig` keeps the result);
hardware is resolved once by `hardware.resolve_plan`; hooks go through one `HookDispatcher`; progress
lives in one `LoopState`. Nothing outside this class writes these attributes.
"""

from __future__ import annotations

import ast
import functools
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Generator, Iterable, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.trainer.args import build_config, parse_max_time, validate_trainer_args
from torchbolt.trainer.dispatch import HookDispatcher, RunContext, is_overridden
from torchbolt.trainer.hardware import resolve_plan
from torchbolt.trainer.loop import Loop, capture_rng, estimated_stepping_batches
from torchbolt.trainer.metrics import MetricsHub
from torchbolt.trainer.precision import Precision
from torchbolt.trainer.state import LoopState, RunningStage, TrainerFn, TrainerState, TrainerStatus
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.core.optimizer import LightningOptimizer, LRSchedulerConfig

log = logging.getLogger(__name__)


class _NoOpLogger:
    """Stands in for loggers under fast_dev_run: accepts every call, writes nothing."""

    name = ""
    version = ""
    save_dir = None
    log_dir = None
    root_dir = None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Discard metrics."""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Discard hyper-parameters."""

    def save(self) -> None:
        """Nothing to save."""

    def finalize(self, status: str) -> None:
        """Nothing to close."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _defaults_from_env(init: Callable[..., None]) -> Callable[..., None]:
    """Read `PL_TRAINER_<ARG>` environment variables as defaults (explicit keywords win), as Lightning does.

    Values are parsed with `ast.literal_eval` (so "3" is an int, "True" a bool) and kept as strings otherwise.
    Positional arguments are matched to the catalog's argument order, then validated like keywords.
    """
    from torchbolt.catalog import TRAINER_ARGS

    names = [a.name for a in TRAINER_ARGS]

    @functools.wraps(init)
    def wrapper(self: Trainer, *args: Any, **kwargs: Any) -> None:
        if args:
            kwargs.update(dict(zip(names, args, strict=False)))
        env: dict[str, Any] = {}
        for name in names:
            raw = os.environ.get(f"PL_TRAINER_{name.upper()}")
            if raw:
                try:
                    env[name] = ast.literal_eval(raw)
                except (ValueError, SyntaxError):
                    env[name] = raw
        init(self, **{**env, **kwargs})

    return wrapper


class Trainer:
    """Runs a LightningModule: `fit`, `validate`, `test` and `predict`, with Lightning 2.x's arguments."""

    @_defaults_from_env
    def __init__(
        self,
        *,
        accelerator: str | Any = "auto",
        strategy: str | Any = "auto",
        devices: list[int] | str | int = "auto",
        num_nodes: int = 1,
        precision: int | str | None = None,
        logger: Any | Iterable[Any] | bool | None = None,
        callbacks: list[Callback] | Callback | None = None,
        fast_dev_run: int | bool = False,
        max_epochs: int | None = None,
        min_epochs: int | None = None,
        max_steps: int = -1,
        min_steps: int | None = None,
        max_time: str | timedelta | dict[str, int] | None = None,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        overfit_batches: int | float = 0.0,
        val_check_interval: int | float | str | timedelta | dict[str, int] | None = None,
        check_val_every_n_epoch: int | None = 1,
        num_sanity_val_steps: int | None = None,
        log_every_n_steps: int | None = None,
        enable_checkpointing: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_model_summary: bool | None = None,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: int | float | None = None,
        gradient_clip_algorithm: str | None = None,
        deterministic: bool | str | None = None,
        benchmark: bool | None = None,
        inference_mode: bool = True,
        use_distributed_sampler: bool = True,
        profiler: Any | str | None = None,
        detect_anomaly: bool = False,
        barebones: bool = False,
        plugins: Any | list[Any] | None = None,
        sync_batchnorm: bool = False,
        reload_dataloaders_every_n_epochs: int = 0,
        default_root_dir: str | Path | None = None,
        enable_autolog_hparams: bool = True,
        model_registry: str | None = None,
        **unknown: Any,
    ) -> None:
        from torchbolt.catalog import TRAINER_ARGS

        given = locals()
        values = {a.name: given[a.name] for a in TRAINER_ARGS}
        self._checked_args = validate_trainer_args(values, unknown)
        self._config: Any = None
        cfg = self._checked_args

        # ---- hardware -------------------------------------------------------------------------------
        self._plan = resolve_plan(accelerator, devices, strategy, precision, num_nodes,
                                  env={"cuda_available": _cuda_available()})
        self._precision = Precision(self._plan.precision)
        self._device = torch.device(self._plan.device)
        self._profiler, self._active_profiler = _init_profiler(cfg["profiler"])
        if plugins is not None and plugins != []:
            raise MisconfigurationException(
                "Trainer(plugins=...) is not available in this build of torchbolt (it runs one CPU device with the "
                "built-in precisions); remove the plugins argument."
            )
        if deterministic is not None:
            torch.use_deterministic_algorithms(bool(deterministic), warn_only=(deterministic == "warn"))
            if deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if benchmark is None and deterministic:
            benchmark = False
        if benchmark is not None:
            torch.backends.cudnn.benchmark = benchmark
        self.deterministic = deterministic
        self.benchmark = benchmark
        self.sync_batchnorm = sync_batchnorm
        self.use_distributed_sampler = use_distributed_sampler
        self.model_registry = model_registry

        # ---- run state ------------------------------------------------------------------------------
        self.state = TrainerState()
        self._ctx = RunContext()
        self._hooks = HookDispatcher(self, self._ctx)
        self._metrics = MetricsHub(self)
        self._progress = LoopState()
        self._loop = Loop(self)
        self._loader_args: dict[str, Any] = {}
        self._batch_hook_owner: dict[str, Any] = {}
        self._clip_overridden = False
        self._resume_state: dict[str, Any] | None = None
        self._restored = False
        self._signal_count = 0
        self._received_signal: int | None = None
        self._eval_steps: dict[tuple[str, int], int] = {}
        self.should_stop = False
        self.lightning_module: LightningModule | None = None
        self.datamodule: LightningDataModule | None = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self._lightning_optimizers: list[LightningOptimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self.ckpt_path: str | None = None
        self.val_check_batch: int | float = float("inf")

        # ---- loop limits and debugging flags ----------------------------------------------------------
        self.barebones = barebones
        self._default_root_dir = os.fspath(default_root_dir) if default_root_dir is not None else os.getcwd()
        self.fast_dev_run: int | bool = fast_dev_run
        self.accumulate_grad_batches = accumulate_grad_batches
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = cfg["gradient_clip_algorithm"]
        self.inference_mode = inference_mode
        self._detect_anomaly = detect_anomaly
        self.reload_dataloaders_every_n_epochs = reload_dataloaders_every_n_epochs
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.enable_autolog_hparams = enable_autolog_hparams
        self.max_time = parse_max_time(max_time)
        self.log_every_n_steps = 50 if log_every_n_steps is None else log_every_n_steps
        self.num_sanity_val_steps: int | float = 2 if num_sanity_val_steps is None else num_sanity_val_steps
        if self.num_sanity_val_steps == -1:
            self.num_sanity_val_steps = float("inf")
        self.limit_train_batches = _limit(cfg["limit_train_batches"])
        self.limit_val_batches = _limit(cfg["limit_val_batches"])
        self.limit_test_batches = _limit(cfg["limit_test_batches"])
        self.limit_predict_batches = _limit(cfg["limit_predict_batches"])
        self.val_check_interval = _limit(cfg["val_check_interval"])
        # Time-based validation (Lightning 2.6): 'DD:HH:MM:SS', a timedelta or a dict -> seconds between runs.
        self._val_check_time_interval: float | None = None
        self._last_val_time = 0.0
        if isinstance(self.val_check_interval, (str, Mapping, timedelta)):
            duration = parse_max_time(self.val_check_interval, "val_check_interval")
            assert duration is not None
            self._val_check_time_interval = duration.total_seconds()
        self.overfit_batches = cfg["overfit_batches"]
        self.max_steps = max_steps
        self.min_steps = min_steps
        if fast_dev_run:
            n = 1 if fast_dev_run is True else int(fast_dev_run)
            self.fast_dev_run = n if fast_dev_run is not True else True
            if n > 0:
                self.limit_train_batches = self.limit_val_batches = n
                self.limit_test_batches = self.limit_predict_batches = n
                self.max_steps = n
                max_epochs = 1
                self.num_sanity_val_steps = 0
                self.val_check_interval = 1.0
                self._val_check_time_interval = None
                self.check_val_every_n_epoch = 1
                print(f"Running in `fast_dev_run` mode: will run the requested loop using {n} batch(es). "
                      "Logging and checkpointing is suppressed.")
        if barebones:
            self.log_every_n_steps = 0
            self.num_sanity_val_steps = 0
            self._metrics.disabled = True
        if self.overfit_batches > 0:
            self.limit_train_batches = self.limit_val_batches = self.overfit_batches

        # ---- callbacks and loggers --------------------------------------------------------------------
        self.callbacks: list[Callback] = self._init_callbacks(
            callbacks, enable_checkpointing, enable_progress_bar, enable_model_summary, barebones
        )
        has_timer = any(type(cb).__name__ == "Timer" for cb in self.callbacks)
        if max_epochs is None:
            if self.max_steps == -1 and not has_timer:
                warnings.warn(
                    "`max_epochs` was not set. Setting it to 1000 epochs. To train without an epoch limit, set "
                    "`max_epochs=-1`.",
                    stacklevel=2,
                )
                max_epochs = 1000
            else:
                max_epochs = -1
        if min_epochs is None:
            min_epochs = 1 if min_steps is not None else 0
        self.max_epochs: int = max_epochs
        self.min_epochs: int = min_epochs
        self.loggers: list[Any] = self._init_loggers(logger, barebones)

    # =============================================================================================
    # Construction helpers
    # =============================================================================================
    def _init_callbacks(self, callbacks: Any, enable_checkpointing: bool | None, enable_progress_bar: bool | None,
                        enable_model_summary: bool | None, barebones: bool) -> list[Callback]:
        from torchbolt.callbacks.callback import Callback

        if callbacks is None:
            found: list[Any] = []
        elif isinstance(callbacks, Callback):
            found = [callbacks]
        else:
            found = list(callbacks)
        for cb in found:
            if not isinstance(cb, Callback):
                raise MisconfigurationException(
                    f"Trainer(callbacks=...) got a {type(cb).__name__}, which is not a Callback; pass instances of "
                    "torchbolt.Callback subclasses (for instance ModelCheckpoint(...))."
                )
        checkpointing = not barebones and enable_checkpointing is not False
        if checkpointing and not any(_is_checkpoint(cb) for cb in found):
            from torchbolt.callbacks.model_checkpoint import ModelCheckpoint

            found.append(ModelCheckpoint())
        if not checkpointing and any(_is_checkpoint(cb) for cb in found) and enable_checkpointing is False:
            raise MisconfigurationException(
                "Trainer was configured with enable_checkpointing=False but found ModelCheckpoint in callbacks list; "
                "remove one of them."
            )
        if self.max_time is not None:
            from torchbolt.callbacks.timer import Timer

            if not any(isinstance(cb, Timer) for cb in found):
                found.append(Timer(duration=self.max_time, interval="step"))
        progress = not barebones and enable_progress_bar is not False
        bars = [cb for cb in found if _is_progress_bar(cb)]
        if len(bars) > 1:
            raise MisconfigurationException(
                "You added multiple progress bar callbacks to the Trainer; keep only one."
            )
        if progress and not bars:
            from torchbolt.callbacks.progress import TQDMProgressBar

            found.append(TQDMProgressBar())
        elif not progress and bars and enable_progress_bar is False:
            raise MisconfigurationException(
                f"Trainer was configured with enable_progress_bar=False but found {type(bars[0]).__name__} in "
                "callbacks list; remove one of them."
            )
        summary = not barebones and enable_model_summary is not False
        if summary and not any(type(cb).__name__ == "ModelSummary" for cb in found):
            from torchbolt.callbacks.model_summary import ModelSummary

            found.append(ModelSummary())
        # A script run from the editor (L3) streams run events through its own Trainer when the launcher
        # set TORCHBOLT_EVENTS; the CLI adds the callback itself, so it is never added twice.
        events_target = os.environ.get("TORCHBOLT_EVENTS")
        if events_target and not any(type(cb).__name__ == "EventStreamCallback" for cb in found):
            from torchbolt.callbacks.event_stream import EventStreamCallback

            found.append(EventStreamCallback(events_target))
        return _checkpoints_last(found)

    def _init_loggers(self, logger: Any, barebones: bool) -> list[Any]:
        if barebones or logger is False or (logger is None and barebones):
            return []
        if self.fast_dev_run:
            return [_NoOpLogger()] if logger not in (False,) else []
        if logger is True or logger is None:
            from torchbolt.loggers import TensorBoardLogger

            return [TensorBoardLogger(save_dir=self._default_root_dir)]
        if isinstance(logger, Iterable) and not isinstance(logger, (str, bytes)):
            found = list(logger)
        else:
            found = [logger]
        for item in found:
            if not callable(getattr(item, "log_metrics", None)):
                raise MisconfigurationException(
                    f"Trainer(logger=...) got a {type(item).__name__}, which is not a logger (it has no log_metrics); "
                    "pass a torchbolt.loggers.Logger such as TensorBoardLogger or CSVLogger, True, or False."
                )
        return found

    # =============================================================================================
    # State users read
    # =============================================================================================
    @property
    def config(self) -> Any:
        """The validated arguments as a frozen pydantic `TrainerConfig` (`.model_dump()` gives a dict)."""
        if self._config is None:
            self._config = build_config(self._checked_args)
        return self._config

    @property
    def logger(self) -> Any | None:
        """The first logger, or None."""
        return self.loggers[0] if self.loggers else None

    @logger.setter
    def logger(self, logger: Any | None) -> None:
        self.loggers = [] if logger is None else [logger]

    @property
    def default_root_dir(self) -> str:
        """Folder for logs and checkpoints when no logger or ModelCheckpoint says otherwise."""
        return self._default_root_dir

    @property
    def log_dir(self) -> str:
        """The first logger's log_dir, else default_root_dir."""
        logger = self.logger
        if logger is not None and not isinstance(logger, _NoOpLogger):
            found = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
            if found is not None:
                return os.fspath(found)
        return self._default_root_dir

    @property
    def current_epoch(self) -> int:
        """The current epoch, 0-based (equals the number of finished epochs after fit)."""
        return self._progress.fit.epoch.current.completed

    @property
    def global_step(self) -> int:
        """Number of optimizer steps taken (every optimizer's steps count under manual optimization)."""
        fit = self._progress.fit
        module = self.lightning_module
        if module is not None and not module.automatic_optimization:
            return fit.manual_step.total.completed
        return fit.optim.step.total.completed

    @property
    def is_last_batch(self) -> bool:
        """Whether the current training batch is the last of the epoch."""
        return self._progress.fit.batch.is_last_batch

    @property
    def num_training_batches(self) -> int | float:
        """Training batches per epoch after limits (inf for loaders without length)."""
        return self._loop.num_training_batches

    @property
    def num_val_batches(self) -> list[int | float]:
        """Validation batches per dataloader after limits."""
        if self.state.fn == TrainerFn.VALIDATING:
            return list(self._loop.num_eval_batches.get("validate", []))
        return list(self._loop.num_val_batches)

    @property
    def num_sanity_val_batches(self) -> list[int | float]:
        """Sanity-check batches per validation dataloader."""
        return [min(self.num_sanity_val_steps, n) for n in self._loop.num_val_batches]

    @property
    def num_test_batches(self) -> list[int | float]:
        """Test batches per dataloader after limits."""
        return list(self._loop.num_eval_batches.get("test", []))

    @property
    def num_predict_batches(self) -> list[int | float]:
        """Predict batches per dataloader after limits."""
        return list(self._loop.num_eval_batches.get("predict", []))

    @property
    def train_dataloader(self) -> Any:
        """What the training dataloader hook returned (None before fit)."""
        return self._loop.train_source

    @property
    def val_dataloaders(self) -> Any:
        """What the validation dataloader hook returned."""
        if self.state.fn == TrainerFn.VALIDATING:
            loaders = self._loop.eval_loaders.get("validate")
            return loaders[0] if loaders and len(loaders) == 1 else loaders
        return self._loop.val_source

    @property
    def test_dataloaders(self) -> Any:
        """The test dataloader(s)."""
        loaders = self._loop.eval_loaders.get("test")
        return loaders[0] if loaders and len(loaders) == 1 else loaders

    @property
    def predict_dataloaders(self) -> Any:
        """The predict dataloader(s)."""
        loaders = self._loop.eval_loaders.get("predict")
        return loaders[0] if loaders and len(loaders) == 1 else loaders

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Total optimizer steps fit will take (loads the training dataloader if needed)."""
        return estimated_stepping_batches(self)

    @property
    def enable_validation(self) -> bool:
        """Whether fit validates: a validation source, an overridden validation_step, limit_val_batches > 0."""
        module = self.lightning_module
        if module is None:
            return False
        from torchbolt.core.module import LightningModule

        return (self._loop.source_defined("val_dataloader") or self._loader_args.get("val_dataloaders") is not None) \
            and is_overridden(module, "validation_step", LightningModule) and self.limit_val_batches > 0

    @property
    def callback_metrics(self) -> dict[str, torch.Tensor]:
        """Metrics monitors see (ModelCheckpoint, EarlyStopping): last step values in training, epoch values."""
        return self._metrics.callback_metrics()

    @property
    def logged_metrics(self) -> dict[str, torch.Tensor]:
        """Metrics sent (or due) to the loggers."""
        return self._metrics.logged_metrics()

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        """Metrics logged with prog_bar=True, as numbers."""
        return self._metrics.progress_bar_metrics()

    @property
    def model(self) -> torch.nn.Module | None:
        """The module being run (no wrapper on one device)."""
        return self.lightning_module

    @property
    def checkpoint_callbacks(self) -> list[Callback]:
        """Every checkpoint callback."""
        return [cb for cb in self.callbacks if _is_checkpoint(cb)]

    @property
    def checkpoint_callback(self) -> Callback | None:
        """The first ModelCheckpoint, or None."""
        found = [cb for cb in self.checkpoint_callbacks if type(cb).__name__ != "OnExceptionCheckpoint"]
        return found[0] if found else None

    @property
    def early_stopping_callbacks(self) -> list[Callback]:
        """Every EarlyStopping callback."""
        from torchbolt.callbacks.early_stopping import EarlyStopping

        return [cb for cb in self.callbacks if isinstance(cb, EarlyStopping)]

    @property
    def early_stopping_callback(self) -> Callback | None:
        """The first EarlyStopping callback, or None."""
        found = self.early_stopping_callbacks
        return found[0] if found else None

    @property
    def progress_bar_callback(self) -> Callback | None:
        """The progress bar callback, or None."""
        return next((cb for cb in self.callbacks if _is_progress_bar(cb)), None)

    @property
    def interrupted(self) -> bool:
        """True when the last run was stopped by an exception or a signal."""
        return self.state.status == TrainerStatus.INTERRUPTED

    @property
    def received_sigterm(self) -> bool:
        """True once SIGTERM arrived during a run."""
        return self._received_signal == signal.SIGTERM

    def _flag(self, stage: RunningStage) -> bool:
        return self.state.stage == stage

    def _set_flag(self, stage: RunningStage, value: bool) -> None:
        if value:
            self.state.stage = stage
        elif self.state.stage == stage:
            self.state.stage = None

    training = property(lambda self: self._flag(RunningStage.TRAINING),
                        lambda self, v: self._set_flag(RunningStage.TRAINING, v), doc="Whether training runs.")
    sanity_checking = property(lambda self: self._flag(RunningStage.SANITY_CHECKING),
                               lambda self, v: self._set_flag(RunningStage.SANITY_CHECKING, v),
                               doc="Whether the sanity check runs.")
    validating = property(lambda self: self._flag(RunningStage.VALIDATING),
                          lambda self, v: self._set_flag(RunningStage.VALIDATING, v), doc="Whether validation runs.")
    testing = property(lambda self: self._flag(RunningStage.TESTING),
                       lambda self, v: self._set_flag(RunningStage.TESTING, v), doc="Whether testing runs.")
    predicting = property(lambda self: self._flag(RunningStage.PREDICTING),
                          lambda self, v: self._set_flag(RunningStage.PREDICTING, v), doc="Whether predicting runs.")

    @property
    def evaluating(self) -> bool:
        """Whether a validation or test loop runs."""
        return self.state.stage is not None and self.state.stage.evaluating

    # single-device facts (what distributed code reads)
    global_rank = 0
    local_rank = 0
    node_rank = 0
    world_size = 1
    is_global_zero = True
    num_nodes = 1
    num_devices = 1
    device_ids = [0]

    @property
    def profiler(self) -> Any:
        """The profiler (`PassThroughProfiler` when none was given); `with trainer.profiler.profile("name"):`
        times custom code in the same report."""
        return self._profiler

    @property
    def precision(self) -> str:
        """The resolved precision, e.g. '32-true'."""
        return self._plan.precision

    @property
    def precision_plugin(self) -> Precision:
        """The precision object (conversion and autocast)."""
        return self._precision

    @property
    def fit_loop(self) -> _FitLoopView:
        """Read-only view of fit's progress with Lightning's attribute names (epoch_progress, epoch_loop, ...)."""
        return _FitLoopView(self)

    @property
    def predict_loop(self) -> Any:
        """The predict loop; `.predictions` holds the last predictions."""
        return self._loop

    @property
    def loop_state(self) -> LoopState:
        """All loop progress counters (the checkpoint's `loops` entry)."""
        return self._progress

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Print on global rank 0."""
        print(*args, **kwargs)

    # =============================================================================================
    # Checkpoint integration (called by torchbolt.trainer.checkpoint_connector)
    # =============================================================================================
    def loops_state_dict(self) -> dict[str, Any]:
        """The `loops` entry of a checkpoint, including what exact mid-epoch resume needs."""
        loop = self._loop
        fit = self._progress.fit
        # inside an epoch's batch loop, including a validation run in the middle of it
        in_batches = self.state.fn == TrainerFn.FITTING and loop._epoch_running
        # written from on_train_batch_end: that batch has trained; the resumed run finishes it (exact resume)
        tail_pending = in_batches and loop._in_batch_end
        # written during the validation that follows a batch: the resumed run finishes what comes after it
        val_tail_pending = in_batches and not tail_pending and bool(self.validating)
        fit.resume = {
            "epoch": fit.epoch.current.processed if in_batches else max(fit.epoch.current.processed - 1, 0),
            "batches_done": (fit.batch.current.processed if tail_pending else loop._batches_done_in_epoch)
            if in_batches else 0,
            "epoch_finished": not in_batches,
            "tail_pending": tail_pending,
            "val_tail_pending": val_tail_pending,
            "rng": capture_rng(),
        }
        if in_batches:
            fit.resume["results"] = loop.results("train").state_dict()
        if loop._epoch_start_rng is not None and in_batches:
            fit.resume["epoch_start_rng"] = loop._epoch_start_rng
        return self._progress.state_dict()

    def load_loops_state_dict(self, loops: dict[str, Any], fn: str | None = None) -> None:
        """Restore progress counters from a checkpoint's `loops` entry (resume point for fit)."""
        self._progress.load_state_dict(loops)
        self._restored = True
        if fn in (None, "fit"):
            resume = dict(self._progress.fit.resume)
            if "epoch" not in resume:  # a Lightning-written checkpoint: derive the position from counters
                fit = self._progress.fit
                finished = fit.epoch.current.processed > fit.epoch.current.completed or fit.batch.is_last_batch
                resume = {
                    "epoch": fit.epoch.current.processed if not finished else fit.epoch.current.processed - 1,
                    "batches_done": 0 if finished else fit.batch.current.processed,
                    "epoch_finished": finished,
                }
            self._resume_state = resume

    def _resume_position(self) -> dict[str, Any] | None:
        return self._resume_state

    def save_checkpoint(self, filepath: str | Path, weights_only: bool | None = False,
                        storage_options: Any | None = None) -> None:
        """Write a checkpoint of the current run to `filepath` (atomically)."""
        if self.lightning_module is None:
            raise AttributeError(
                "Saving a checkpoint is only possible if a model is attached to the Trainer. Did you call "
                "`Trainer.save_checkpoint()` before calling `Trainer.{fit,validate,test,predict}`?"
            )
        if storage_options is not None:
            raise TypeError("save_checkpoint(storage_options=...) is not supported: torchbolt writes local files.")
        from torchbolt.checkpoint.io import atomic_save
        from torchbolt.trainer.checkpoint_connector import dump_checkpoint

        with self._profiler.profile("save_checkpoint"):
            checkpoint = dump_checkpoint(self, bool(weights_only))
            atomic_save(checkpoint, filepath)

    # =============================================================================================
    # Entry points
    # =============================================================================================
    def fit(self, model: LightningModule, train_dataloaders: Any = None, val_dataloaders: Any = None,
            datamodule: LightningDataModule | None = None, ckpt_path: str | Path | None = None,
            weights_only: bool | None = None) -> None:
        """Train `model` (see reference §2.1 for the exact hook order)."""
        from torchbolt.core.datamodule import LightningDataModule

        if isinstance(train_dataloaders, LightningDataModule):
            datamodule, train_dataloaders = train_dataloaders, None
        if datamodule is not None and (train_dataloaders is not None or val_dataloaders is not None):
            raise MisconfigurationException(
                "You cannot pass `train_dataloader` or `val_dataloaders` to `trainer.fit(datamodule=...)`: pass "
                "either the dataloaders or the datamodule."
            )
        self._loader_args = {"train_dataloader": train_dataloaders, "val_dataloaders": val_dataloaders}
        self._model_given = True
        self._run(TrainerFn.FITTING, model, datamodule, ckpt_path, weights_only)

    def validate(self, model: LightningModule | None = None, dataloaders: Any = None,
                 ckpt_path: str | Path | None = None, verbose: bool = True,
                 datamodule: LightningDataModule | None = None,
                 weights_only: bool | None = None) -> list[Mapping[str, float]]:
        """Run one validation epoch; returns the logged metrics, one dict per dataloader."""
        return self._evaluate(TrainerFn.VALIDATING, model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    def test(self, model: LightningModule | None = None, dataloaders: Any = None,
             ckpt_path: str | Path | None = None, verbose: bool = True,
             datamodule: LightningDataModule | None = None,
             weights_only: bool | None = None) -> list[Mapping[str, float]]:
        """Run one test epoch; returns the logged metrics, one dict per dataloader."""
        return self._evaluate(TrainerFn.TESTING, model, dataloaders, ckpt_path, verbose, datamodule, weights_only)

    def predict(self, model: LightningModule | None = None, dataloaders: Any = None,
                datamodule: LightningDataModule | None = None, return_predictions: bool | None = None,
                ckpt_path: str | Path | None = None, weights_only: bool | None = None) -> list[Any] | None:
        """Run predict_step over the predict dataloaders; returns the predictions (per dataloader if several)."""
        dataloaders, datamodule = self._split_eval_args(dataloaders, datamodule, "predict")
        self._loader_args = {"predict_dataloader": dataloaders}
        self._return_predictions = True if return_predictions is None else return_predictions
        self._model_given = model is not None
        model = self._model_for_eval(model, "predict")
        return self._run(TrainerFn.PREDICTING, model, datamodule, ckpt_path, weights_only)  # type: ignore[no-any-return]

    def _split_eval_args(self, dataloaders: Any, datamodule: Any, fn: str) -> tuple[Any, Any]:
        from torchbolt.core.datamodule import LightningDataModule

        if isinstance(dataloaders, LightningDataModule):
            datamodule, dataloaders = dataloaders, None
        if dataloaders is not None and datamodule is not None:
            raise MisconfigurationException(
                f"You cannot pass both `trainer.{fn}(dataloaders=..., datamodule=...)`: pass one of them."
            )
        return dataloaders, datamodule

    def _model_for_eval(self, model: LightningModule | None, fn: str) -> LightningModule:
        if model is None:
            if self.lightning_module is None:
                raise MisconfigurationException(
                    f"`model` must be provided to `trainer.{fn}()` when it hasn't been passed in a previous run."
                )
            return self.lightning_module
        from torchbolt.core.module import LightningModule

        if not isinstance(model, LightningModule):
            raise TypeError(
                f"`Trainer.{fn}()` requires a `LightningModule`, got: {type(model).__qualname__}."
            )
        return model

    def _evaluate(self, fn: TrainerFn, model: Any, dataloaders: Any, ckpt_path: Any, verbose: bool,
                  datamodule: Any, weights_only: bool | None) -> list[Mapping[str, float]]:
        name = fn.value
        dataloaders, datamodule = self._split_eval_args(dataloaders, datamodule, name)
        hook = "val_dataloader" if fn == TrainerFn.VALIDATING else "test_dataloader"
        self._loader_args = {hook: dataloaders}
        self._verbose = verbose
        self._model_given = model is not None
        model = self._model_for_eval(model, name)
        return self._run(fn, model, datamodule, ckpt_path, weights_only)  # type: ignore[no-any-return]

    # =============================================================================================
    # The run (reference §2.6)
    # =============================================================================================
    def _run(self, fn: TrainerFn, model: LightningModule, datamodule: LightningDataModule | None,
             ckpt_path: Any, weights_only: bool | None) -> Any:
        from torchbolt.core.module import LightningModule

        if not isinstance(model, LightningModule):
            raise TypeError(f"`Trainer.{fn.value}()` requires a `LightningModule`, got: {type(model).__qualname__}.")
        self.state.fn = fn
        self.state.status = TrainerStatus.RUNNING
        self.should_stop = False
        self._restored = False
        self._resume_state = None
        self._attach(model, datamodule)
        profiler = self._active_profiler
        if profiler is not None:
            profiler.setup(stage=fn.value, local_rank=None, log_dir=self.log_dir)
            profiler._lightning_module = model
        with self._signal_handlers(fn):
            try:
                return self._run_body(fn, model, ckpt_path, weights_only)
            except BaseException as exc:
                if type(exc).__name__ == "TunerExit":
                    # a Tuner search finished inside this fit: end it like a completed run
                    self._teardown(fn.value, "success")
                    self.state.status = TrainerStatus.FINISHED
                    self.state.stage = None
                    return None
                self._on_exception(exc)
                raise
            finally:
                if profiler is not None:
                    profiler.describe()  # the report, also after a failure (what ran until then)

    def _attach(self, model: LightningModule, datamodule: LightningDataModule | None) -> None:
        if self.lightning_module is not None and self.lightning_module is not model:
            self.lightning_module.trainer = None  # type: ignore[assignment]
            self._loop = Loop(self)
        model.trainer = self
        self.lightning_module = model
        self.datamodule = datamodule
        if datamodule is not None:
            datamodule.trainer = self
        model._track(self._device, None)

    def _run_body(self, fn: TrainerFn, model: LightningModule, ckpt_path: Any, weights_only: bool | None) -> Any:
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        hooks = self._hooks
        dm = self.datamodule
        stage = fn.value
        # configure_callbacks first: its callbacks take part in every later hook
        hooks.bind(model, dm, self.callbacks)
        self._attach_model_callbacks(model)
        hooks.bind(model, dm, self.callbacks)
        self._check_module(fn, model)
        # prepare_data: DataModule's, then the module's (each only if overridden)
        if dm is not None and is_overridden(dm, "prepare_data", LightningDataModule):
            self._call_plain(dm, "prepare_data")
        if is_overridden(model, "prepare_data", LightningModule):
            hooks.call_module("prepare_data")
        hooks.call("setup", stage)
        if is_overridden(model, "configure_sharded_model", LightningModule):
            if is_overridden(model, "configure_model", LightningModule):
                raise RuntimeError(
                    "Both `configure_model` and `configure_sharded_model` are overridden; keep only "
                    "`configure_model` (configure_sharded_model is deprecated)."
                )
            hooks.call_module("configure_sharded_model")
        if is_overridden(model, "configure_model", LightningModule):
            hooks.call_module("configure_model")
        self._precision.convert_module(model)
        model._track(self._device, self._precision.dtype)
        self._batch_hook_owner = self._select_batch_hooks(model, dm)

        from torchbolt.trainer import checkpoint_connector as connector

        checkpoint: dict[str, Any] | None = None
        # Without a model, validate/test/predict after a fit default to the best checkpoint (as Lightning).
        given = self.__dict__.get("_model_given", True)
        path = connector.resolve_ckpt_path(self, ckpt_path, stage, model_provided=given, model_connected=not given)
        if path is not None:
            self.ckpt_path = os.fspath(path)
            checkpoint = connector.restore_modules_and_callbacks(self, path, weights_only=weights_only)
        if fn == TrainerFn.FITTING:
            self._setup_optimizers(model)
        else:
            self._metrics.activate(None)

        result: Any = None
        if fn == TrainerFn.FITTING:
            hooks.call("on_fit_start")
            self._log_hyperparams(model, dm)
            if checkpoint is not None:
                connector.restore_training_state(self, checkpoint)
            self._loop.fit()
            hooks.call("on_fit_end")
        else:
            if checkpoint is not None:
                connector.restore_training_state(self, checkpoint)
            model.zero_grad()
            if fn == TrainerFn.PREDICTING:
                self.state.stage = RunningStage.PREDICTING
                self._loop.setup_eval_data("predict")
                result = self._loop.predict(self._return_predictions)
            else:
                testing = fn == TrainerFn.TESTING
                self._loop.setup_eval_data("test" if testing else "validate")
                stage_enum = RunningStage.TESTING if testing else RunningStage.VALIDATING
                self.state.stage = stage_enum
                raw = self._loop.run_evaluation(stage_enum, in_fit=False)
                result = raw
                if getattr(self, "_verbose", False) and raw:
                    _print_results(raw, "test" if testing else "validate")
        self._teardown(stage, "success")
        self.state.status = TrainerStatus.FINISHED
        self.state.stage = None
        self._resume_state = None
        return result

    def _call_plain(self, obj: Any, name: str, *args: Any) -> Any:
        ctx = self._ctx
        prev, ctx.fx = ctx.fx, name
        try:
            return getattr(obj, name)(*args)
        finally:
            ctx.fx = prev

    def _check_module(self, fn: TrainerFn, model: LightningModule) -> None:
        from torchbolt.core.module import LightningModule

        if fn == TrainerFn.FITTING:
            if not is_overridden(model, "training_step", LightningModule):
                raise MisconfigurationException(
                    "No `training_step()` method defined. The Trainer expects as minimum a `training_step()`, "
                    "`train_dataloader()` and `configure_optimizers()` to be defined."
                )
            if not is_overridden(model, "configure_optimizers", LightningModule):
                raise MisconfigurationException(
                    "No `configure_optimizers()` method defined. The Trainer expects as minimum a `training_step()`, "
                    "`train_dataloader()` and `configure_optimizers()` to be defined."
                )
            if not model.automatic_optimization:
                if self.gradient_clip_val is not None and self.gradient_clip_val > 0:
                    raise MisconfigurationException(
                        f"Automatic gradient clipping is not supported for manual optimization. Remove "
                        f"`Trainer(gradient_clip_val={self.gradient_clip_val})` or switch to automatic optimization "
                        "(clip by hand with self.clip_gradients(opt, ...) in training_step)."
                    )
                if self.accumulate_grad_batches != 1:
                    raise MisconfigurationException(
                        f"Automatic gradient accumulation is not supported for manual optimization. Remove "
                        f"`Trainer(accumulate_grad_batches={self.accumulate_grad_batches})` or switch to automatic "
                        "optimization."
                    )
        needed = {TrainerFn.VALIDATING: "validation_step", TrainerFn.TESTING: "test_step"}.get(fn)
        if needed is not None and not is_overridden(model, needed, LightningModule):
            raise MisconfigurationException(
                f"No `{needed}()` method defined to run `Trainer.{fn.value}`: define it on {type(model).__name__}."
            )
        for legacy in ("training_step_end", "validation_step_end", "test_step_end"):
            if callable(getattr(model, legacy, None)):
                from torchbolt.catalog import REMOVED_HOOKS

                raise NotImplementedError(
                    f"Support for `{legacy}` was removed in v2.0.0: {REMOVED_HOOKS[legacy].replacement}."
                )

    def _attach_model_callbacks(self, model: LightningModule) -> None:
        """Merge configure_callbacks(): same-type Trainer callbacks are replaced; checkpoints go last."""
        from torchbolt.callbacks.callback import Callback

        extra = self._hooks.call_module("configure_callbacks")
        if not extra:
            return
        extra_list = [extra] if isinstance(extra, Callback) else list(extra)
        types = {type(cb) for cb in extra_list}
        kept = [cb for cb in self.callbacks if type(cb) not in types]
        self.callbacks = _checkpoints_last(kept + extra_list)

    def _select_batch_hooks(self, model: LightningModule, dm: LightningDataModule | None) -> dict[str, Any]:
        """Owner of each batch-transfer hook: the DataModule's override wins; defaults are skipped on CPU."""
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        owners: dict[str, Any] = {}
        for name in ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"):
            if dm is not None and is_overridden(dm, name, LightningDataModule):
                owners[name] = dm
            elif is_overridden(model, name, LightningModule):
                owners[name] = model
            elif name == "transfer_batch_to_device" and self._device.type != "cpu":
                owners[name] = model  # the default moves tensors; on CPU they already are there
        return owners

    def _setup_optimizers(self, model: LightningModule) -> None:
        from torchbolt.core.module import LightningModule
        from torchbolt.core.optimizer import (
            LightningOptimizer,
            build_scheduler_configs,
            parse_configure_optimizers,
            validate_schedulers,
        )

        output = self._hooks.call_module("configure_optimizers")
        optimizers, entries, monitor = parse_configure_optimizers(output)
        automatic = model.automatic_optimization
        if automatic and len(optimizers) > 1:
            raise RuntimeError(
                "Training with multiple optimizers is only supported with manual optimization. Remove the extra "
                "optimizers from configure_optimizers(), or set `self.automatic_optimization = False` in __init__ "
                "and step them yourself in training_step."
            )
        configs = build_scheduler_configs(entries, monitor, automatic)
        validate_schedulers(model, optimizers, configs)
        self.optimizers = optimizers
        self.lr_scheduler_configs = configs
        lightning_optimizers = [LightningOptimizer(opt) for opt in optimizers]
        progress = self._progress.fit.manual_step

        def before() -> None:
            progress.increment("ready")

        def after() -> None:
            progress.increment("completed")

        for lopt in lightning_optimizers:
            lopt._step_runner = self._loop.run_optimizer_step
            if not automatic:
                lopt._on_before_step = before
                lopt._on_after_step = after
        self._lightning_optimizers = lightning_optimizers
        self._clip_overridden = is_overridden(model, "configure_gradient_clipping", LightningModule)

    def _log_hyperparams(self, model: LightningModule, dm: LightningDataModule | None) -> None:
        if not self.loggers or not self.enable_autolog_hparams:
            return
        params: dict[str, Any] = {}
        if dm is not None and dm.hparams and dm.__dict__.get("_log_hyperparams", True):
            params.update(dm.hparams)
        if model.hparams and model.__dict__.get("_log_hyperparams", True):
            overlap = set(params) & set(model.hparams)
            clashing = [k for k in overlap if params[k] != model.hparams[k]]
            if clashing:
                raise MisconfigurationException(
                    f"Error while merging hparams: the keys {clashing} are present in both the LightningModule's and "
                    "LightningDataModule's hparams but have different values."
                )
            params.update(model.hparams)
        for logger in self.loggers:
            if params:
                logger.log_hyperparams(params)
            if callable(getattr(logger, "log_graph", None)):
                logger.log_graph(model)
            if callable(getattr(logger, "save", None)):
                logger.save()

    def _teardown(self, stage: str, status: str) -> None:
        self._hooks.call("teardown", stage)
        for logger in self.loggers:
            if callable(getattr(logger, "finalize", None)):
                logger.finalize(status)

    def _on_exception(self, exc: BaseException) -> None:
        """on_exception hooks (callbacks, then DataModule), loggers finalized as failed, teardown."""
        self.state.status = TrainerStatus.INTERRUPTED
        try:
            self._hooks.call("on_exception", exc)
        finally:
            for logger in self.loggers:
                if callable(getattr(logger, "finalize", None)):
                    try:
                        logger.finalize("failed")
                    except Exception:  # noqa: BLE001 - the original exception matters more
                        log.exception("logger.finalize('failed') raised")
            try:
                self._hooks.call("teardown", self.state.fn.value if self.state.fn else "fit")
            except Exception:  # noqa: BLE001
                log.exception("teardown after an exception raised")
            self.state.stage = None

    # =============================================================================================
    # Logging to loggers
    # =============================================================================================
    def _should_log_step(self) -> bool:
        if self.fast_dev_run:
            return True
        every = self.log_every_n_steps
        if not every or not self.loggers:
            return False
        return (self._progress.fit.batches_that_stepped + 1) % every == 0 or self.should_stop

    def _eval_step_counter(self, stage: RunningStage, dl_idx: int) -> int:
        key = (stage.value, dl_idx)
        step = self._eval_steps.get(key, 0)
        self._eval_steps[key] = step + 1
        return step

    def _log_to_loggers(self, metrics: Mapping[str, torch.Tensor], step: int | None = None) -> None:
        if not self.loggers or not metrics:
            return
        self._metrics.logged.update(metrics)
        scalars: dict[str, float] = {}
        for key, value in metrics.items():
            scalars[key] = value.item() if isinstance(value, torch.Tensor) else float(value)
        if step is None:
            step_metric = scalars.pop("step", None)
            if step_metric is not None:
                step = int(step_metric)
            else:
                scalars.setdefault("epoch", self.current_epoch)
                step = self._progress.fit.batches_that_stepped
        for logger in self.loggers:
            logger.log_metrics(metrics=scalars, step=step)
            logger.save()

    # =============================================================================================
    # Graceful stop on SIGINT / SIGTERM
    # =============================================================================================
    @contextmanager
    def _signal_handlers(self, fn: TrainerFn) -> Generator[None, None, None]:
        """During fit: the first SIGINT/SIGTERM finishes the current step, then stops; a second SIGINT exits now."""
        import threading

        if fn != TrainerFn.FITTING or threading.current_thread() is not threading.main_thread():
            yield
            return
        self._signal_count = 0
        self._received_signal = None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            self._signal_count += 1
            if self._signal_count > 1 and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._received_signal = signum
            self.should_stop = True

        for sig in previous:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _check_signal(self) -> None:
        """Called between steps: turn a received signal into an exception that unwinds fit."""
        signum = self._received_signal
        if signum is None:
            return
        self._received_signal = None
        if signum == signal.SIGINT:
            raise KeyboardInterrupt("fit interrupted by SIGINT (Ctrl+C); the current step finished first")
        raise SystemExit(128 + int(signum))

    @contextmanager
    def init_module(self, empty_init: bool | None = None) -> Generator[None, None, None]:
        """Context manager for creating the module directly on the target device and dtype."""
        dtype = self._precision.dtype
        previous = torch.get_default_dtype()
        if dtype is not None and dtype.is_floating_point:
            torch.set_default_dtype(dtype)
        try:
            with torch.device(self._device):
                yield
        finally:
            torch.set_default_dtype(previous)


class _EpochLoopView:
    """`trainer.fit_loop.epoch_loop` as Lightning code reads it."""

    def __init__(self, trainer: Trainer) -> None:
        fit = trainer._progress.fit
        self._trainer = trainer
        self.batch_progress = fit.batch
        self.scheduler_progress = fit.scheduler
        self.min_steps = trainer.min_steps
        self.max_steps = trainer.max_steps

    @property
    def global_step(self) -> int:
        return self._trainer.global_step

    @property
    def _batches_that_stepped(self) -> int:
        return self._trainer._progress.fit.batches_that_stepped

    @property
    def batch_idx(self) -> int:
        return self.batch_progress.current.ready - 1


class _FitLoopView:
    """`trainer.fit_loop` as Lightning code reads it: progress counters, limits, `state_dict()`."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer
        self.epoch_progress = trainer._progress.fit.epoch
        self.epoch_loop = _EpochLoopView(trainer)
        self.max_epochs = trainer.max_epochs
        self.min_epochs = trainer.min_epochs

    @property
    def total_batch_idx(self) -> int:
        return self._trainer._progress.fit.batch.total.ready - 1

    def state_dict(self) -> dict[str, Any]:
        return self._trainer.loops_state_dict()["fit_loop"]


def _init_profiler(value: Any) -> tuple[Any, Any]:
    """(trainer.profiler, the profiler to time with or None): a name, a Profiler instance or None."""
    import torchbolt.profilers as profilers
    from torchbolt.profilers import PassThroughProfiler, Profiler

    if value is None:
        return PassThroughProfiler(), None
    if isinstance(value, str):
        # the catalog has already checked the name; "xla" raises, explaining XLA is not part of this build
        value = getattr(profilers, {"simple": "SimpleProfiler", "advanced": "AdvancedProfiler",
                                    "pytorch": "PyTorchProfiler", "xla": "XLAProfiler"}[value])()
    if not isinstance(value, Profiler):
        raise MisconfigurationException(
            f"Trainer(profiler={value!r}) is not a Profiler: pass 'simple', 'advanced', 'pytorch' or an instance of "
            "a torchbolt.profilers.Profiler subclass."
        )
    return value, (None if isinstance(value, PassThroughProfiler) else value)


def _limit(value: Any) -> Any:
    if value is None:
        return 1.0
    if isinstance(value, float) and value > 1 and value.is_integer():
        return int(value)
    return value


def _cuda_available() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA install must not stop CPU runs
        return False


def _is_checkpoint(cb: Any) -> bool:
    try:
        from torchbolt.callbacks.checkpoint import Checkpoint
    except ImportError:  # pragma: no cover - while callbacks are being written
        return type(cb).__name__ in ("ModelCheckpoint", "OnExceptionCheckpoint")
    return isinstance(cb, Checkpoint)


def _is_progress_bar(cb: Any) -> bool:
    try:
        from torchbolt.callbacks.progress import ProgressBar
    except ImportError:  # pragma: no cover
        return False
    return isinstance(cb, ProgressBar)


def _checkpoints_last(callbacks: list[Any]) -> list[Any]:
    others = [cb for cb in callbacks if not _is_checkpoint(cb)]
    return others + [cb for cb in callbacks if _is_checkpoint(cb)]


def _print_results(results: list[dict[str, float]], stage: str) -> None:
    rows = [(k.split("/dataloader_idx_")[0], k, v) for result in results for k, v in result.items()]
    if not rows:
        return
    width = max(len(r[1]) for r in rows) + 2
    title = f"{stage.capitalize()} metric"
    line = "─" * (width + 22)
    out = [line, f"{title:<{width}}  {'DataLoader 0' if len(results) == 1 else 'Value'}", line]
    for _, key, value in rows:
        out.append(f"{key:<{width}}  {value:.6g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    out.append(line)
    sys.stdout.write("\n".join(out) + "\n")
