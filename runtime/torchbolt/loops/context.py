"""`Loops`: what the loops of one Trainer share, handed over explicitly instead of read off the Trainer.

The Trainer builds one `Loops` per attached module with its dispatcher, metrics hub, precision, device,
`LoopState`, `TrainerState` and stop signal, and gives each entry point its request and step plan
(`begin`, `set_plan`). The loops read the Trainer only through its public surface (limits, `should_stop`,
`global_step`, `loggers`, ...). Batch-to-device and logger output each live in one method here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.loops._common import INF, ModuleModes
from torchbolt.loops.evaluation import EvaluationLoop
from torchbolt.loops.fit import FitLoop
from torchbolt.loops.optimization import Optimization
from torchbolt.loops.predict import PredictLoop
from torchbolt.loops.sources import DataSources
from torchbolt.trainer.metrics import Results

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.loops.plan import StepPlan
    from torchbolt.trainer.dispatch import HookDispatcher
    from torchbolt.trainer.metrics import MetricsHub
    from torchbolt.trainer.precision import Precision
    from torchbolt.trainer.requests import RunRequest
    from torchbolt.trainer.state import LoopState, StopSignal, TrainerState
    from torchbolt.trainer.trainer import Trainer


class Loops:
    """The fit, evaluation and predict loops of one Trainer and the parts they share."""

    def __init__(self, trainer: Trainer, *, hooks: HookDispatcher, metrics: MetricsHub, precision: Precision,
                 device: torch.device, state: LoopState, trainer_state: TrainerState, stop: StopSignal,
                 detect_anomaly: bool, val_check_seconds: float | None) -> None:
        self.trainer = trainer
        self.hooks = hooks
        self.metrics = metrics
        self.precision = precision
        self.device = device
        self.state = state
        self.trainer_state = trainer_state
        self.stop = stop
        self.detect_anomaly = detect_anomaly
        self.val_check_seconds = val_check_seconds
        self.request: RunRequest | None = None
        # A plain attribute, not a property: the loops read it on every step. set_plan() fills it before
        # any loop runs; None in between makes a premature use fail loudly.
        self.plan: StepPlan = None  # type: ignore[assignment]
        self.modes = ModuleModes()
        self._results: dict[str, Results] = {}
        self.sources = DataSources(self)
        self.optimization = Optimization(self)
        self.fit = FitLoop(self)
        self.evaluation = EvaluationLoop(self)
        self.predict = PredictLoop(self)

    def begin(self, request: RunRequest) -> None:
        """Start an entry point: its request (the plan follows once hooks and optimizers are set up)."""
        self.request = request
        self.plan = None  # type: ignore[assignment]

    def set_plan(self, plan: StepPlan) -> None:
        """The step plan decided for this entry point, before any loop runs."""
        self.plan = plan

    @property
    def module(self) -> LightningModule:
        module = self.trainer.lightning_module
        assert module is not None
        return module

    def results(self, stage: str) -> Results:
        """The Results collection of a stage (one per loop, as in Lightning)."""
        found = self._results.get(stage)
        if found is None:
            found = self._results[stage] = Results(training=stage == "train")
        return found

    # -- the one place step methods run under the precision's autocast --------------------------------
    def run_step(self, name: str, args: tuple[Any, ...]) -> Any:
        """Call the module's step method `name` (training/validation/test/predict_step) in the forward
        context of the precision (autocast for mixed precision)."""
        if self.plan.precision_noop:
            return self.hooks.call_module(name, *args)
        with self.precision.forward_context():
            return self.hooks.call_module(name, *args)

    # -- the one place batches are prepared for the step --------------------------------------------
    def to_device(self, batch: Any, dataloader_idx: int) -> Any:
        """Precision conversion, then the batch-transfer hooks (DataModule's win over the module's)."""
        if not self.plan.precision_noop:  # the plain Precision converts nothing (runs every batch)
            batch = self.precision.convert_input(batch)
        return self.hooks.transfer_batch(batch, self.device, dataloader_idx)

    # -- the one place metrics reach the loggers ------------------------------------------------------
    def should_log_step(self) -> bool:
        """Whether the training step just finished logs to the loggers (log_every_n_steps)."""
        trainer = self.trainer
        if trainer.fast_dev_run:
            return True
        every = trainer.log_every_n_steps
        if not every or not trainer.loggers:
            return False
        return (self.state.fit.batches_that_stepped + 1) % every == 0 or trainer.should_stop

    def log_metrics(self, metrics: Mapping[str, torch.Tensor], step: int | None = None) -> None:
        """Send metrics to every logger at `step` (default: the metrics' own "step", else the training step)."""
        loggers = self.trainer.loggers
        if not loggers or not metrics:
            return
        self.metrics.logged.update(metrics)
        if not self.trainer.is_global_zero:
            return  # loggers write on rank 0 only (logged_metrics still update on every rank)
        scalars: dict[str, float] = {}
        for key, value in metrics.items():
            scalars[key] = value.item() if isinstance(value, torch.Tensor) else float(value)
        if step is None:
            step_metric = scalars.pop("step", None)
            if step_metric is not None:
                step = int(step_metric)
            else:
                scalars.setdefault("epoch", self.trainer.current_epoch)
                step = self.state.fit.batches_that_stepped
        for logger in loggers:
            logger.log_metrics(metrics=scalars, step=step)
            logger.save()

    # -- facts the Trainer exposes ------------------------------------------------------------------
    def estimated_stepping_batches(self) -> int | float:
        """How many optimizer steps fit will take (for schedulers like OneCycleLR)."""
        trainer = self.trainer
        if trainer.max_epochs == -1:
            return INF if trainer.max_steps == -1 else trainer.max_steps
        sources = self.sources
        if sources.train_loader is None:
            sources.setup_train()
        total = sources.num_training_batches
        if total == INF:
            return trainer.max_steps
        steps = math.ceil(total / trainer.accumulate_grad_batches) * max(trainer.max_epochs, 1)
        return min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps
