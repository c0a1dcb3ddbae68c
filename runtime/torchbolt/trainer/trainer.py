"""The Trainer: validates its arguments, prepares the run, then hands control to the loops.

Arguments are checked against `torchbolt.catalog` (a frozen pydantic `TrainerConfig` keeps the result);
hardware is resolved once by `hardware.resolve_plan`; each entry point builds a frozen request
(`requests.py`); hooks go through one `HookDispatcher`; the loops (`torchbolt.loops`) own their state in
one `LoopState`. Callbacks and the module read the Trainer through the public properties below
(docs/runtime-structure.md lists them), and the module its `ModuleChannel` (`_channel`); nothing outside this
class writes its attributes.
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

from torchbolt.loops import Loops, build_step_plan
from torchbolt.strategies.launchers import SpawnLauncher, looks_like_lost_peer
from torchbolt.trainer.args import (
    build_config,
    check_manual_optimization,
    effective_value,
    parse_max_time,
    validate_trainer_args,
)
from torchbolt.trainer.channel import ModuleChannel
from torchbolt.trainer.dispatch import HookDispatcher, RunContext, is_overridden
from torchbolt.trainer.hardware import build_strategy, resolve_plan
from torchbolt.trainer.metrics import MetricsHub
from torchbolt.trainer.precision import Precision
from torchbolt.trainer.requests import EvaluateRequest, FitRequest, PredictRequest, RunRequest
from torchbolt.trainer.state import (
    LoopState,
    RunningStage,
    StopSignal,
    TrainerFn,
    TrainerState,
    TrainerStatus,
)
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


_APEX_ARGS = ("amp_backend", "amp_level")  # Lightning 1.x AMP arguments, mapped to native AMP


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
        # Old tutorials pass amp_backend/amp_level: native AMP replaces Apex (resolve_plan warns and maps it).
        # (Read through a loop, not `unknown.pop("amp_backend")`: jsonargparse reads such pops from the source
        # and would list these removed arguments in LightningCLI's --print_config.)
        legacy = {name: unknown.pop(name) for name in _APEX_ARGS if name in unknown}
        amp_backend, amp_level = legacy.get("amp_backend"), legacy.get("amp_level")
        if amp_level is not None and amp_backend is None:
            amp_backend = "apex"
        self._checked_args = validate_trainer_args(values, unknown)
        self._config: Any = None
        cfg = self._checked_args

        # ---- hardware -------------------------------------------------------------------------------
        self._plan = resolve_plan(accelerator, devices, strategy, precision, num_nodes, plugins=plugins,
                                  sync_batchnorm=sync_batchnorm, amp_backend=amp_backend)
        self._strategy = build_strategy(self._plan)
        self._precision: Precision = self._strategy.precision_plugin
        self._device = self._strategy.root_device
        self._profiler, self._active_profiler = _init_profiler(cfg["profiler"])
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
        self._ctx = RunContext()  # the hook being run, read by self.log
        self._hooks = HookDispatcher(self, self._ctx)
        self._metrics = MetricsHub(self)
        self._channel = ModuleChannel(self._ctx, self._metrics, self._manual_backward)  # the module's line here
        self._progress = LoopState()
        self._stop = StopSignal()
        self.should_stop = False
        self.lightning_module: LightningModule | None = None
        self.datamodule: LightningDataModule | None = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self.ckpt_path: str | None = None

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
        self.limit_train_batches = effective_value("limit_train_batches", cfg["limit_train_batches"])
        self.limit_val_batches = effective_value("limit_val_batches", cfg["limit_val_batches"])
        self.limit_test_batches = effective_value("limit_test_batches", cfg["limit_test_batches"])
        self.limit_predict_batches = effective_value("limit_predict_batches", cfg["limit_predict_batches"])
        self.val_check_interval = effective_value("val_check_interval", cfg["val_check_interval"])
        # Time-based validation (Lightning 2.6): 'DD:HH:MM:SS', a timedelta or a dict -> seconds between runs.
        self._val_check_time_interval: float | None = None
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
        self._loops = self._new_loops()

    def _manual_backward(self, loss: torch.Tensor, *args: Any, **kwargs: Any) -> None:
        """LightningModule.manual_backward, through the module's channel (the current loops' backward)."""
        self._loops.optimization.backward(loss, None, *args, **kwargs)

    def _new_loops(self) -> Loops:
        """Fresh loops (per attached module) wired to this Trainer's dispatcher, metrics and state."""
        return Loops(self, hooks=self._hooks, metrics=self._metrics, precision=self._precision,
                     device=self._device, state=self._progress, trainer_state=self.state, stop=self._stop,
                     detect_anomaly=self._detect_anomaly, val_check_seconds=self._val_check_time_interval)

    # =============================================================================================
    # Construction helpers
    # =============================================================================================
    def _init_callbacks(self, callbacks: Any, enable_checkpointing: bool | None, enable_progress_bar: bool | None,
                        enable_model_summary: bool | None, barebones: bool) -> list[Callback]:
        from torchbolt.callbacks.callback import Callback

        # the arguments were checked by args.check_object_args; this only adds the default callbacks
        if callbacks is None:
            found: list[Any] = []
        elif isinstance(callbacks, Callback):
            found = [callbacks]
        else:
            found = list(callbacks)
        checkpointing = not barebones and enable_checkpointing is not False
        if checkpointing and not any(_is_checkpoint(cb) for cb in found):
            from torchbolt.callbacks.model_checkpoint import ModelCheckpoint

            found.append(ModelCheckpoint())
        if self.max_time is not None:
            from torchbolt.callbacks.timer import Timer

            if not any(isinstance(cb, Timer) for cb in found):
                found.append(Timer(duration=self.max_time, interval="step"))
        # As Lightning: the rich bar and summary by default when rich is installed (on a pipe, e.g. the
        # editor's output panel, the rich bar prints the plain bar's lines instead of a live display).
        rich = _rich_default()
        progress = not barebones and enable_progress_bar is not False
        if progress and not any(_is_progress_bar(cb) for cb in found):
            from torchbolt.callbacks.progress import TQDMProgressBar
            from torchbolt.callbacks.rich_progress import RichProgressBar

            found.append(RichProgressBar() if rich else TQDMProgressBar())
        summary = not barebones and enable_model_summary is not False
        if summary and not any(_is_model_summary(cb) for cb in found):
            from torchbolt.callbacks.model_summary import ModelSummary
            from torchbolt.callbacks.rich_progress import RichModelSummary

            found.append(RichModelSummary() if rich else ModelSummary())
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
            return list(logger)
        return [logger]  # checked by args.check_object_args

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
        return self._loops.sources.num_training_batches

    @property
    def num_val_batches(self) -> list[int | float]:
        """Validation batches per dataloader after limits."""
        sources = self._loops.sources
        if self.state.fn == TrainerFn.VALIDATING:
            return list(sources.num_eval_batches.get("validate", []))
        return list(sources.num_val_batches)

    @property
    def num_sanity_val_batches(self) -> list[int | float]:
        """Sanity-check batches per validation dataloader."""
        return [min(self.num_sanity_val_steps, n) for n in self._loops.sources.num_val_batches]

    @property
    def num_test_batches(self) -> list[int | float]:
        """Test batches per dataloader after limits."""
        return list(self._loops.sources.num_eval_batches.get("test", []))

    @property
    def num_predict_batches(self) -> list[int | float]:
        """Predict batches per dataloader after limits."""
        return list(self._loops.sources.num_eval_batches.get("predict", []))

    @property
    def val_check_batch(self) -> int | float | None:
        """Validation runs every this many training batches (inf: at epoch end; None: time-based)."""
        return self._progress.val_check_batch

    @property
    def train_dataloader(self) -> Any:
        """What the training dataloader hook returned (None before fit)."""
        return self._loops.sources.train_source

    @property
    def val_dataloaders(self) -> Any:
        """What the validation dataloader hook returned."""
        sources = self._loops.sources
        if self.state.fn == TrainerFn.VALIDATING:
            loaders = sources.eval_loaders.get("validate")
            return loaders[0] if loaders and len(loaders) == 1 else loaders
        return sources.val_source

    @property
    def test_dataloaders(self) -> Any:
        """The test dataloader(s)."""
        loaders = self._loops.sources.eval_loaders.get("test")
        return loaders[0] if loaders and len(loaders) == 1 else loaders

    @property
    def predict_dataloaders(self) -> Any:
        """The predict dataloader(s)."""
        loaders = self._loops.sources.eval_loaders.get("predict")
        return loaders[0] if loaders and len(loaders) == 1 else loaders

    @property
    def estimated_stepping_batches(self) -> int | float:
        """Total optimizer steps fit will take (loads the training dataloader if needed)."""
        return self._loops.estimated_stepping_batches()

    @property
    def enable_validation(self) -> bool:
        """Whether fit validates: a validation source, an overridden validation_step, limit_val_batches > 0."""
        module = self.lightning_module
        if module is None:
            return False
        from torchbolt.core.module import LightningModule

        return self._loops.sources.defined("val_dataloader") \
            and is_overridden(module, "validation_step", LightningModule) and self.limit_val_batches > 0

    @property
    def validation_has_run(self) -> bool:
        """Whether the current (or last) validation run inside fit processed a batch (sanity check excluded)."""
        return self._progress.val_has_run

    @property
    def validation_time_interval(self) -> float | None:
        """Seconds between validation runs when `val_check_interval` is a duration, else None."""
        return self._val_check_time_interval

    @property
    def lightning_optimizers(self) -> list[LightningOptimizer]:
        """The optimizers wrapped as LightningOptimizer (what `LightningModule.optimizers()` returns)."""
        return self._loops.optimization.lightning_optimizers

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
        return self._stop.received == signal.SIGTERM

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

    # ---- hardware (resolved once into self._plan; the strategy answers for the processes) --------------
    @property
    def accelerator(self) -> Any:
        """The Accelerator (CPUAccelerator, CUDAAccelerator, ...)."""
        return self._strategy.accelerator

    @property
    def strategy(self) -> Any:
        """The Strategy (SingleDeviceStrategy, DDPStrategy, FSDPStrategy, ...)."""
        return self._strategy

    @property
    def profiler(self) -> Any:
        """The profiler (`PassThroughProfiler` when none was given); `with trainer.profiler.profile("name"):`
        times custom code in the same report."""
        return self._profiler

    @property
    def precision(self) -> str:
        """The resolved precision, e.g. '32-true'."""
        return self._precision.precision

    @property
    def precision_plugin(self) -> Precision:
        """The precision plugin (conversion, autocast, loss scaling)."""
        return self._precision

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        """The GradScaler of '16-mixed', None otherwise."""
        return self._precision.scaler

    @property
    def global_rank(self) -> int:
        return int(self._strategy.global_rank)

    @property
    def local_rank(self) -> int:
        return int(self._strategy.local_rank)

    @property
    def node_rank(self) -> int:
        return int(self._strategy.node_rank)

    @property
    def world_size(self) -> int:
        return int(self._strategy.world_size)

    @property
    def is_global_zero(self) -> bool:
        return bool(self._strategy.is_global_zero)

    @property
    def num_nodes(self) -> int:
        return self._plan.num_nodes

    @property
    def num_devices(self) -> int:
        return self._plan.num_devices

    @property
    def device_ids(self) -> list[int]:
        return list(self._plan.device_ids)

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int] | None:
        return self._strategy.distributed_sampler_kwargs

    @property
    def fit_loop(self) -> _FitLoopView:
        """Read-only view of fit's progress with Lightning's attribute names (epoch_progress, epoch_loop, ...)."""
        return _FitLoopView(self)

    @property
    def predict_loop(self) -> Any:
        """The predict loop; `.predictions` holds the last predictions."""
        return self._loops.predict

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
        self._progress.fit.resume = self._loops.fit.checkpoint_position()
        return self._progress.state_dict()

    def load_loops_state_dict(self, loops: dict[str, Any], fn: str | None = None) -> None:
        """Restore progress counters from a checkpoint's `loops` entry (and, for fit, the resume point)."""
        self._progress.load_resume_point(loops, fn)

    def save_checkpoint(self, filepath: str | Path, weights_only: bool | None = False,
                        storage_options: Any | None = None) -> None:
        """Write a checkpoint of the current run to `filepath` (atomically)."""
        if self.lightning_module is None:
            raise AttributeError(
                "Saving a checkpoint is only possible if a model is attached to the Trainer. Did you call "
                "`Trainer.save_checkpoint()` before calling `Trainer.{fit,validate,test,predict}`?"
            )
        from torchbolt.trainer.checkpoint_connector import dump_checkpoint

        with self._profiler.profile("save_checkpoint"):
            checkpoint = dump_checkpoint(self, bool(weights_only))
            # Every rank builds the checkpoint (FSDP gathers shards); the strategy writes on rank 0 only.
            self._strategy.save_checkpoint(checkpoint, filepath, storage_options=storage_options)
        self._strategy.barrier("Trainer.save_checkpoint")

    # =============================================================================================
    # Entry points
    # =============================================================================================
    def fit(self, model: LightningModule, train_dataloaders: Any = None, val_dataloaders: Any = None,
            datamodule: LightningDataModule | None = None, ckpt_path: str | Path | None = None,
            weights_only: bool | None = None) -> None:
        """Train `model` (see reference §2.1 for the exact hook order)."""
        # a real Lightning object here gets an error naming the mix-up, not a confusing failure later
        from torchbolt.compat.mixup import reject_lightning_objects

        reject_lightning_objects("Trainer.fit", model=model, train_dataloaders=train_dataloaders,
                                 val_dataloaders=val_dataloaders, datamodule=datamodule)
        request = FitRequest.make(datamodule, train_dataloaders, val_dataloaders, ckpt_path, weights_only)
        self._run(request, model)

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
        # a real Lightning object here gets an error naming the mix-up, not a confusing failure later
        from torchbolt.compat.mixup import reject_lightning_objects

        reject_lightning_objects("Trainer.predict", model=model, dataloaders=dataloaders, datamodule=datamodule)
        request = PredictRequest.make(model is not None, datamodule, dataloaders, ckpt_path, weights_only,
                                      return_predictions)
        return self._run(request, self._model_for_eval(model, "predict"))  # type: ignore[no-any-return]

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
        # a real Lightning object here gets an error naming the mix-up, not a confusing failure later
        from torchbolt.compat.mixup import reject_lightning_objects

        reject_lightning_objects(f"Trainer.{fn.value}", model=model, dataloaders=dataloaders, datamodule=datamodule)
        request = EvaluateRequest.make(fn, model is not None, datamodule, dataloaders, ckpt_path, weights_only,
                                       verbose)
        return self._run(request, self._model_for_eval(model, fn.value))  # type: ignore[no-any-return]

    # =============================================================================================
    # The run (reference §2.6)
    # =============================================================================================
    def _run(self, request: RunRequest, model: LightningModule) -> Any:
        from torchbolt.core.module import LightningModule

        fn = request.fn
        if not isinstance(model, LightningModule):
            raise TypeError(f"`Trainer.{fn.value}()` requires a `LightningModule`, got: {type(model).__qualname__}.")
        launcher = self._strategy.launcher
        if isinstance(launcher, SpawnLauncher) and not launcher.spawned:
            return self._run_spawned(launcher, request, model)
        self.state.fn = fn
        self.state.status = TrainerStatus.RUNNING
        self._metrics.reset_metrics()  # as Lightning: each run's callback/logged metrics start empty
        self.should_stop = False
        self._progress.begin_run()
        self._attach(model, request.datamodule)
        self._loops.begin(request)
        strategy = self._strategy
        profiler = self._active_profiler
        if profiler is not None:
            profiler.setup(stage=fn.value, local_rank=None, log_dir=self.log_dir)
            profiler._lightning_module = model
        with self._signal_handlers(fn):
            try:
                if launcher is not None and not launcher.launched and "LOCAL_RANK" not in os.environ:
                    launcher.start_children()  # strategy='ddp': the other local ranks re-run this script
                strategy.setup_environment()
                if not self.is_global_zero:
                    self._quiet_progress_bars()
                result = self._run_body(request, model)
            except BaseException as exc:
                if type(exc).__name__ == "TunerExit":
                    # a Tuner search finished inside this fit: end it like a completed run
                    self._strategy.teardown()
                    self._teardown(fn.value, "success")
                    self.state.status = TrainerStatus.FINISHED
                    self.state.stage = None
                    return None
                # After a failure no collective may run (the peers may be gone or elsewhere): the exception
                # hooks and teardown see a strategy that no longer communicates.
                strategy.abort_collectives()
                if self._stop.received is not None and _lost_peer(exc) and strategy.world_size > 1:
                    # Stop reached every rank; one that stopped a step earlier closed its connections. This
                    # rank's lost connection is part of that stop, not a failure of the run.
                    signum = int(self._stop.received)
                    stop: BaseException = (KeyboardInterrupt() if signum == signal.SIGINT
                                           else SystemExit(128 + signum))
                    stop.__cause__ = exc
                    exc = stop
                failure = self._peer_failure(launcher, exc)
                # When another rank raised first, this rank only lost its peers: the hooks (and the editor's
                # event stream) get that rank's error, with this rank's as its cause.
                shown = exc if failure is None else failure
                if failure is not None:
                    failure.__cause__ = exc
                try:
                    self._on_exception(shown)
                finally:
                    if launcher is not None:
                        launcher.shutdown(failed=True)
                if failure is not None:
                    raise failure from exc
                from torchbolt.strategies.launchers import record_rank_error

                record_rank_error(exc)
                if exc.__cause__ is not None and isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise exc from exc.__cause__
                raise
            finally:
                if profiler is not None:
                    profiler.describe()  # the report, also after a failure (what ran until then)
        # A stop request that arrived after the last step (on_train_end, on_fit_end, teardown): the run is complete,
        # but the process was asked to end, so it ends as a stop during training does (non-zero), not by going on.
        self._stop.raise_pending()
        return result

    def _run_spawned(self, launcher: SpawnLauncher, request: RunRequest, model: LightningModule) -> Any:
        """strategy='ddp_spawn'/'ddp_fork'/'ddp_notebook': every rank runs `_run` in a process started here; this
        process waits, then takes its local rank 0's results back (see `_spawned_results`)."""
        self.state.fn = request.fn
        self.state.status = TrainerStatus.RUNNING
        self._metrics.reset_metrics()
        self._attach(model, request.datamodule)
        # What pickling sends, named for the error when something of it cannot be pickled.
        parts: list[tuple[str, Any]] = [("the LightningModule", model)]
        if request.datamodule is not None:
            parts.append(("the LightningDataModule", request.datamodule))
        parts += [(f"the {hook} passed to trainer.{request.fn.value}()", loaders)
                  for hook, loaders in request.dataloaders.items()]
        parts += [(f"the callback {type(cb).__name__}", cb) for cb in self.callbacks]
        parts += [(f"the logger {type(lg).__name__}", lg) for lg in self.loggers]
        parts.append(("the Trainer", self))
        try:
            from torchbolt.callbacks.event_stream import EventStreamCallback

            streams = [cb for cb in self.callbacks if isinstance(cb, EventStreamCallback)]
            results = launcher.launch(self._run, request, model, collect=self._spawned_results, parts=parts,
                                      event_streams=streams)
        except BaseException:
            self.state.status = TrainerStatus.INTERRUPTED
            self.state.stage = None
            raise
        return self._take_spawned_results(results)

    def _spawned_results(self, result: Any) -> dict[str, Any] | None:
        """In a started process, after the run: what local rank 0 sends back to its node's launching process (more
        than Lightning, which sends the weights, best_model_path, callback_metrics and state). With num_nodes > 1
        every node's launching process ends with the trained weights, as in Lightning."""
        if self.local_rank != 0:
            return None
        from torchbolt.loggers.logger import FolderLogger
        from torchbolt.utilities.apply_func import move_data_to_device

        model = self.lightning_module
        assert model is not None
        fitting = self.state.fn == TrainerFn.FITTING
        return move_data_to_device({  # type: ignore[no-any-return]
            "result": result,
            "weights": model.state_dict() if fitting else None,
            "callback_metrics": dict(self.callback_metrics),
            "logged_metrics": dict(self.logged_metrics),
            "progress_bar_metrics": dict(self.progress_bar_metrics),
            "state": (self.state.fn, self.state.status, self.state.stage),
            "loops": self._progress.state_dict(),
            "callbacks": {key: state for key, state in ((cb.state_key, cb.state_dict()) for cb in self.callbacks)
                          if state},
            "should_stop": self.should_stop,
            "ckpt_path": self.ckpt_path,
            # the version folders rank 0's loggers wrote to (the launching process would pick the next one)
            "logger_versions": [lg.version if isinstance(lg, FolderLogger) else None for lg in self.loggers],
        }, "cpu")

    def _take_spawned_results(self, results: dict[str, Any] | None) -> Any:
        """In the launching process: load what rank 0 sent (weights into the user's module, metrics, state,
        progress counters, callback state such as ModelCheckpoint's best_model_path and best_model_score)."""
        from torchbolt.loggers.logger import FolderLogger

        if results is None:  # a function that returned nothing
            self.state.status = TrainerStatus.FINISHED
            return None
        if results["weights"] is not None:
            assert self.lightning_module is not None
            self.lightning_module.load_state_dict(results["weights"])
        metrics = self._metrics
        metrics.reset_metrics()
        metrics.callback.update(results["callback_metrics"])
        metrics.logged.update(results["logged_metrics"])
        metrics.pbar.update(results["progress_bar_metrics"])
        self.state.fn, self.state.status, self.state.stage = results["state"]
        self._progress.load_state_dict(results["loops"])
        for callback in self.callbacks:
            state = results["callbacks"].get(callback.state_key)
            if state is None:
                continue
            if _is_checkpoint(callback) and "dirpath" in state:
                callback.dirpath = state["dirpath"]  # resolved in the process that ran; the bookkeeping belongs to it
            try:
                callback.load_state_dict(state)
            except Exception as err:  # noqa: BLE001 - the run succeeded; one callback's bookkeeping must not undo it
                warnings.warn(f"{type(callback).__name__}: the state rank 0 sent back did not load here ({err}); "
                              "this callback keeps the state it had before the run.", stacklevel=3)
        for logger, version in zip(self.loggers, results["logger_versions"], strict=False):
            if isinstance(logger, FolderLogger) and version is not None:
                logger._version = version  # the folder the run wrote to, so trainer.log_dir names it
        self.should_stop = bool(results["should_stop"])
        self.ckpt_path = results["ckpt_path"]
        return results["result"]

    @staticmethod
    def _peer_failure(launcher: Any, exc: BaseException) -> Any:
        """The RankFailedError of another rank that failed first ('ddp': a local rank this process started;
        'ddp_spawn'/'ddp_fork': a rank started beside this one), or None.

        Read before the other ranks are stopped (their exit then is not their failure). When `exc` looks like
        a lost connection, the failed rank may still be exiting: wait a little for it."""
        if launcher is None or isinstance(exc, KeyboardInterrupt):
            return None
        return launcher.peer_failure(wait=5.0 if _lost_peer(exc) else 0.0)

    def _attach(self, model: LightningModule, datamodule: LightningDataModule | None) -> None:
        if self.lightning_module is not None and self.lightning_module is not model:
            self.lightning_module.trainer = None  # type: ignore[assignment]
            self._loops = self._new_loops()
        model.trainer = self
        self.lightning_module = model
        self.datamodule = datamodule
        if datamodule is not None:
            datamodule.trainer = self
        model._track(self._device, None)

    def _run_body(self, request: RunRequest, model: LightningModule) -> Any:
        from torchbolt.core.module import LightningModule

        fn = request.fn
        hooks = self._hooks
        dm = self.datamodule
        stage = fn.value
        move_batches = self._device.type != "cpu"  # on CPU the default transfer has nothing to move
        # configure_callbacks first: its callbacks take part in every later hook
        hooks.bind(model, dm, self.callbacks, move_batches)
        self._attach_model_callbacks(model)
        hooks.bind(model, dm, self.callbacks, move_batches)
        self._check_module(fn, model)
        hooks.call("prepare_data")  # the DataModule's, then the module's (each only if overridden)
        for logger in self.loggers:  # as Lightning: each logger's writer (run folder, event file) exists from setup
            getattr(logger, "experiment", None)
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
        # Precision conversion, device placement and wrapping (DDP/FSDP) happen before configure_optimizers.
        self._strategy.setup_module(model, fitting=fn == TrainerFn.FITTING)
        model._track(self._device, self._precision.dtype)

        from torchbolt.trainer import checkpoint_connector as connector

        checkpoint: dict[str, Any] | None = None
        # Without a model, validate/test/predict after a fit default to the best checkpoint (as Lightning).
        given = request.model_given
        path = connector.resolve_ckpt_path(self, request.ckpt_path, stage, model_provided=given,
                                           model_connected=not given)
        if path is not None:
            self.ckpt_path = os.fspath(path)
            checkpoint = connector.restore_modules_and_callbacks(self, path, weights_only=request.weights_only)
        if fn == TrainerFn.FITTING:
            self._setup_optimizers(model)
        else:
            self._metrics.activate(None)
        # decided once for the whole entry point: which hooks run, which fast path applies
        self._loops.set_plan(build_step_plan(model, hooks, self._precision, len(self.optimizers)))

        result: Any = None
        loops = self._loops
        if isinstance(request, FitRequest):
            hooks.call("on_fit_start")
        self._log_hyperparams(model, dm)  # every entry point logs them, as Lightning
        if isinstance(request, FitRequest):
            if checkpoint is not None:
                connector.restore_training_state(self, checkpoint)
            loops.fit.run()
            self._strategy.teardown()  # as Lightning: before on_fit_end, which sees the unwrapped module
            hooks.call("on_fit_end")
        else:
            if checkpoint is not None:
                connector.restore_training_state(self, checkpoint)
            model.zero_grad()
            if isinstance(request, PredictRequest):
                self.state.stage = RunningStage.PREDICTING
                loops.sources.setup_eval("predict")
                result = loops.predict.run(request.return_predictions)
            else:
                assert isinstance(request, EvaluateRequest)
                testing = fn == TrainerFn.TESTING
                loops.sources.setup_eval("test" if testing else "validate")
                stage_enum = RunningStage.TESTING if testing else RunningStage.VALIDATING
                self.state.stage = stage_enum
                result = loops.evaluation.run(stage_enum, in_fit=False)
                if request.verbose and result:
                    _print_results(result, "test" if testing else "validate")
            self._strategy.teardown()
        self._teardown(stage, "success")
        self.state.status = TrainerStatus.FINISHED
        self.state.stage = None
        self._progress.resume_point = None
        return result

    def _quiet_progress_bars(self) -> None:
        """Ranks other than 0 show no progress (one progress for the run, as in Lightning) and write no editor
        event stream (a forked rank inherited rank 0's; 'ddp' gives the other ranks none already)."""
        from torchbolt.callbacks.event_stream import EventStreamCallback
        from torchbolt.callbacks.progress import ProgressBar

        for callback in self.callbacks:
            if isinstance(callback, ProgressBar):
                callback.disable()
            elif isinstance(callback, EventStreamCallback):
                callback.close()

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
                check_manual_optimization(self.gradient_clip_val, self.accumulate_grad_batches)
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

    def _setup_optimizers(self, model: LightningModule) -> None:
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

        optimization = self._loops.optimization
        for lopt in lightning_optimizers:
            lopt._step_runner = optimization.optimizer_step
            if not automatic:
                lopt._on_before_step = before
                lopt._on_after_step = after
        optimization.lightning_optimizers = lightning_optimizers

    def _log_hyperparams(self, model: LightningModule, dm: LightningDataModule | None) -> None:
        if not self.loggers or not self.enable_autolog_hparams or not self.is_global_zero:
            return
        params: dict[str, Any] = {}
        if dm is not None and dm.hparams and dm.__dict__.get("_log_hyperparams", True):
            params.update(dm.hparams)
        if model.hparams and model.__dict__.get("_log_hyperparams", True):
            overlap = set(params) & set(model.hparams) - {"_class_path"}  # LightningCLI's own entry
            clashing = [k for k in overlap if params[k] != model.hparams[k]]
            if clashing:
                raise MisconfigurationException(
                    f"Error while merging hparams: the keys {clashing} are present in both the LightningModule's and "
                    "LightningDataModule's hparams but have different values."
                )
            params.update(model.hparams)
        params.pop("_class_path", None)  # LightningCLI's internal entry, not logged (as Lightning)
        for logger in self.loggers:
            if params:
                logger.log_hyperparams(params)
            if callable(getattr(logger, "log_graph", None)):
                logger.log_graph(model)
            if callable(getattr(logger, "save", None)):
                logger.save()

    def _teardown(self, stage: str, status: str) -> None:
        self._hooks.call("teardown", stage)
        for logger in self.loggers if self.is_global_zero else []:
            if callable(getattr(logger, "finalize", None)):
                logger.finalize(status)

    def _on_exception(self, exc: BaseException) -> None:
        """on_exception hooks (callbacks, then DataModule), loggers finalized as failed, teardown."""
        self.state.status = TrainerStatus.INTERRUPTED
        try:
            self._hooks.call("on_exception", exc)
        finally:
            try:
                self._strategy.on_exception(exc)  # as Lightning: after the hooks (DDP explains its errors)
            except Exception:  # noqa: BLE001 - the original exception matters more
                log.exception("the strategy's on_exception raised")
            for logger in self.loggers if self.is_global_zero else []:
                if callable(getattr(logger, "finalize", None)):
                    try:
                        logger.finalize("failed")
                    except Exception:  # noqa: BLE001 - the original exception matters more
                        log.exception("logger.finalize('failed') raised")
            try:
                self._strategy.teardown()  # as Lightning's Trainer._teardown after an interruption
            except Exception:  # noqa: BLE001 - the original exception matters more
                log.exception("the strategy's teardown after an exception raised")
            try:
                self._hooks.call("teardown", self.state.fn.value if self.state.fn else "fit")
            except Exception:  # noqa: BLE001
                log.exception("teardown after an exception raised")
            self.state.stage = None

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
        stop = self._stop
        stop.reset()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            if stop.count >= 1 and signum == signal.SIGINT:
                raise KeyboardInterrupt
            stop.receive(signum)
            self.should_stop = True
            launcher = getattr(self._strategy, "launcher", None)
            if launcher is not None and hasattr(launcher, "forward_signal"):
                launcher.forward_signal(signum)  # every rank stops, not only this one

        for sig in previous:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

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


def _lost_peer(exc: BaseException) -> bool:
    """Whether `exc` looks like a collective that failed because another rank went away."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return False
    return looks_like_lost_peer(f"{type(exc).__name__} {exc}")


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


def _cuda_available() -> bool:
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken CUDA install must not stop CPU runs
        return False


def _is_checkpoint(cb: Any) -> bool:
    from torchbolt.callbacks.checkpoint import Checkpoint

    return isinstance(cb, Checkpoint)


def _is_model_summary(cb: Any) -> bool:
    from torchbolt.callbacks.model_summary import ModelSummary

    return isinstance(cb, ModelSummary)


def _rich_default() -> bool:
    """Whether the default progress bar and summary are the rich ones: rich >= 10.2.2 is installed."""
    from torchbolt.callbacks.rich_progress import _rich_available

    return _rich_available() and _rich_recent()


@functools.cache
def _rich_recent() -> bool:
    """rich's installed version is at least 10.2.2 (read once: the metadata lookup costs a file scan)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor, patch = (version("rich").split(".") + ["0", "0"])[:3]
        return (int(major), int(minor), int("".join(c for c in patch if c.isdigit()) or 0)) >= (10, 2, 2)
    except (PackageNotFoundError, ValueError):
        return True  # importable but without metadata (vendored): use it


def _is_progress_bar(cb: Any) -> bool:
    from torchbolt.callbacks.progress import ProgressBar

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
