"""`trainer.fit`'s loop, in hook order (reference §2.1):

    sanity check (on_sanity_check_start, validation run, on_sanity_check_end)
    on_train_start
    for epoch:
        on_train_epoch_start
        for batch:
            batch to device; on_train_batch_start
            optimization (automatic: optimizer_step(closure: training_step, zero_grad, backward); manual)
            step LR schedulers; on_train_batch_end
            step metrics to loggers; validation when due (evaluation.py); plateau schedulers
        on_train_epoch_end; epoch schedulers; epoch metrics to loggers
    on_train_end

A SIGINT/SIGTERM during fit (the Trainer's handler fills `StopSignal`) ends the run after the current
step, before any validation that step would have triggered.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.loops._common import INF, capture_rng, reached, restore_rng
from torchbolt.loops.evaluation import warn_epoch_end
from torchbolt.trainer.dispatch import TRAIN_NEXT_ACTION
from torchbolt.trainer.state import RunningStage, TrainerFn
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.loops.context import Loops
    from torchbolt.trainer.metrics import Results


class FitLoop:
    """Epochs and training batches; see the module docstring for the order."""

    def __init__(self, loops: Loops) -> None:
        self._loops = loops
        self._train_iter: Iterator[Any] | None = None
        self._iter_fresh = False
        self._fetched = 0
        self._prefetched: list[Any] = []
        self._train_done = False
        self._resume: dict[str, Any] | None = None
        self._epoch_start_rng: dict[str, Any] | None = None
        self._batches_done_in_epoch = 0
        self._epoch_outputs: list[Any] = []
        #: inside an epoch's batch loop (stays True when it raises, so on_exception checkpoints know)
        self.epoch_running = False
        #: inside on_train_batch_end (a checkpoint written there lets a resumed run finish the batch)
        self.in_batch_end = False
        self._val_enabled_epoch = False
        #: training_step runs without zero_grad and backward (StochasticWeightAveraging's batch-norm epoch,
        #: Lightning's `fit_loop._skip_backward`)
        self.skip_backward = False

    # ================================================================================================
    # fit
    # ================================================================================================
    def run(self) -> None:
        """Sanity check, then train epoch after epoch until a limit is reached or should_stop is set."""
        loops = self._loops
        trainer = loops.trainer
        progress = loops.state.fit
        module = loops.module
        hooks = loops.hooks
        module.zero_grad()

        if loops.evaluation.should_sanity_check():
            loops.evaluation.sanity_check()

        loops.trainer_state.stage = RunningStage.TRAINING
        self.epoch_running = False
        loops.sources.setup_train()
        if loops.sources.num_training_batches == 0 or trainer.limit_train_batches == 0:
            return
        self._resume = loops.state.resume_point
        progress.epoch.current.completed = progress.epoch.current.processed
        if self._resume is None or self._resume.get("epoch_finished", True):
            if self._resume is not None and self._resume.get("rng") is not None:
                # resuming at an epoch boundary: continue the random streams where the checkpoint left them
                restore_rng(self._resume["rng"])
            # Lightning creates the first epoch's iterator here, before on_train_start (RNG draw order).
            self._open_train_iter()
        if loops.sources.val_loaders is None and self.should_check_val_epoch():
            loops.sources.setup_val()
        hooks.call("on_train_start")

        with torch.autograd.set_detect_anomaly(loops.detect_anomaly):
            while not self.done():
                self.run_epoch()
        self._train_iter = None
        hooks.call("on_train_end")

    def done(self) -> bool:
        loops = self._loops
        trainer = loops.trainer
        progress = loops.state.fit
        if loops.sources.num_training_batches == 0:
            return True
        if reached(trainer.global_step, trainer.max_steps):
            return True
        if reached(progress.epoch.current.processed, trainer.max_epochs):
            progress.epoch.current.completed = progress.epoch.current.processed
            return True
        return bool(trainer.should_stop and self.can_stop_early())

    def can_stop_early(self) -> bool:
        trainer = self._loops.trainer
        progress = self._loops.state.fit
        met_epochs = progress.epoch.current.processed >= trainer.min_epochs if trainer.min_epochs else True
        met_steps = trainer.global_step >= trainer.min_steps if trainer.min_steps else True
        return met_epochs and met_steps

    # ================================================================================================
    # the training iterator
    # ================================================================================================
    def forget_iterator(self) -> None:
        """The training dataloader changed: the next epoch opens a fresh iterator."""
        self._train_iter = None

    def _open_train_iter(self) -> None:
        self._epoch_start_rng = capture_rng()
        self._train_iter = iter(self._loops.sources.train_loader)
        self._iter_fresh = True
        self._fetched = 0
        self._train_done = False
        self._prefetched = []
        if self._loops.sources.num_training_batches == INF:
            # No length: fetch one batch ahead (as Lightning does) so the last batch is known when it comes.
            try:
                self._prefetched.append(next(self._train_iter))
            except StopIteration:
                self._train_done = True

    def _next_batch(self) -> Any:
        """The next training batch (StopIteration at the end); tracks whether it is the last one."""
        total = self._loops.sources.num_training_batches
        if self._fetched >= total:
            raise StopIteration
        assert self._train_iter is not None
        if total == INF:
            if not self._prefetched:
                raise StopIteration
            batch = self._prefetched.pop()
            try:
                self._prefetched.append(next(self._train_iter))
            except StopIteration:
                self._train_done = True
            self._fetched += 1
            return batch
        batch = next(self._train_iter)
        self._fetched += 1
        self._train_done = self._fetched >= total
        return batch

    def _set_sampler_epoch(self, epoch: int) -> None:
        train_loader = self._loops.sources.train_loader
        for dl in getattr(train_loader, "loaders", [train_loader]):
            for obj in (getattr(dl, "sampler", None), getattr(getattr(dl, "batch_sampler", None), "sampler", None)):
                if obj is not None and callable(getattr(obj, "set_epoch", None)):
                    obj.set_epoch(epoch)

    # ================================================================================================
    # one epoch
    # ================================================================================================
    def run_epoch(self) -> None:
        """One training epoch: epoch-start hooks, the batch loop, then epoch-end hooks and schedulers."""
        loops = self._loops
        hooks = loops.hooks
        progress = loops.state.fit
        metrics = loops.metrics
        epoch = progress.epoch.current.processed
        loops.sources.setup_train()
        self._set_sampler_epoch(epoch)
        resume = self._resume
        self._resume = None
        skip = 0
        if resume is not None and resume.get("epoch") == epoch and not resume.get("epoch_finished", False):
            skip = int(resume.get("batches_done", 0))
        results = loops.results("train")
        tail_pending = val_tail_pending = False
        if skip:
            # Mid-epoch resume: on_train_epoch_start already ran before the checkpoint was written.
            assert resume is not None
            if resume.get("results") is not None:
                results.load_state_dict(resume["results"])  # the epoch's running reductions so far
            metrics.activate(results)
            metrics.set_on_step(True)
            self._fast_forward(resume, skip)
            tail_pending = bool(resume.get("tail_pending", False))
            val_tail_pending = bool(resume.get("val_tail_pending", False))
            if tail_pending:
                # written in on_train_batch_end: that batch trained, its completion is still to come
                progress.batch.current.completed = skip - 1
                self._batches_done_in_epoch = skip - 1
        else:
            progress.epoch.increment("ready")
            # per-epoch ("current") counters restart, as in Lightning's checkpoints
            progress.batch.reset_current()
            progress.scheduler.reset_current()
            progress.optim.step.reset_current()
            progress.optim.zero_grad.reset_current()
            self._batches_done_in_epoch = 0
            metrics.activate(results)
            metrics.set_on_step(True)
            hooks.call("on_train_epoch_start")
            progress.epoch.increment("started")
            if not self._iter_fresh or self._train_iter is None:
                self._open_train_iter()
        self._iter_fresh = False
        self._epoch_outputs = []

        self._val_enabled_epoch = loops.trainer.enable_validation
        self.epoch_running = True
        if tail_pending:
            self.finish_batch(results)
        elif val_tail_pending:
            self.finish_after_validation()
        profiler = loops.plan.profiler
        if profiler is None:
            self.batch_loop(results)
        else:
            with profiler.profile("run_training_epoch"):
                self.batch_loop(results)
        self.epoch_running = False

        # ---- epoch end -------------------------------------------------------------------------
        metrics.set_on_step(False)
        progress.epoch.increment("processed")
        if loops.plan.collect_train_outputs:
            warn_epoch_end(loops, "training_epoch_end", loops.evaluation.warned_epoch_end)
            hooks.call_module("training_epoch_end", self._epoch_outputs)
        self._epoch_outputs = []
        hooks.call("on_train_epoch_end")
        metrics.epoch_metrics()
        if self.ready_batches_reached():
            self.update_lr_schedulers("epoch", plateau=True)
        progress.batches_that_stepped -= 1  # loggers expect epoch metrics at the last step's index
        loops.log_metrics(metrics.epoch_metrics()[1])
        progress.batches_that_stepped += 1
        metrics.reset_results(results)
        progress.epoch.increment("completed")
        loops.stop.raise_pending()

    def _fast_forward(self, resume: dict[str, Any], skip: int) -> None:
        """Resume mid-epoch: replay the epoch's shuffle from its saved RNG state and skip `skip` batches."""
        progress = self._loops.state.fit
        total = self._loops.sources.num_training_batches
        start_rng = resume.get("epoch_start_rng")
        if start_rng is not None:
            restore_rng(start_rng)
        self._open_train_iter()
        for _ in range(min(skip, int(total) if total != INF else skip)):
            self._next_batch()
        self._batches_done_in_epoch = skip
        if start_rng is not None and resume.get("rng") is not None:
            restore_rng(resume["rng"])
        progress.batch.current.ready = progress.batch.current.completed = skip
        progress.batch.current.started = progress.batch.current.processed = skip

    def ready_batches_reached(self) -> bool:
        progress = self._loops.state.fit
        return progress.batch.current.ready == self._loops.sources.num_training_batches or progress.batch.is_last_batch

    def should_accumulate(self) -> bool:
        accumulate = self._loops.trainer.accumulate_grad_batches
        if accumulate == 1:
            return False  # every batch steps (the common case; this runs several times per batch)
        done = self._loops.state.fit.batch.current.ready % accumulate == 0
        return not done and not self.ready_batches_reached()

    # ================================================================================================
    # the batch loop
    # ================================================================================================
    def batch_loop(self, results: Results) -> None:
        """Every training batch of the epoch (reference §2.1 step 13)."""
        loops = self._loops
        trainer = loops.trainer
        hooks = loops.hooks
        plan = loops.plan
        optimization = loops.optimization
        progress = loops.state.fit
        batch_progress = progress.batch
        automatic = plan.automatic
        collect_outputs = plan.collect_train_outputs
        has_batch_start = plan.train_batch_start
        has_batch_end = plan.train_batch_end
        transfer = plan.transfer
        takes_idx = plan.takes_idx["training_step"]
        num_batches = loops.sources.num_training_batches
        # The counters are bumped in place (total and current alike) rather than through
        # Progress.increment: this runs several times per batch.
        current = batch_progress.current
        total = batch_progress.total
        profiler = plan.profiler
        if profiler is not None:
            # made once per epoch: each call times one fetch / one training batch
            timed_fetch = hooks.timer(TRAIN_NEXT_ACTION)
            timed_batch = hooks.timer("run_training_batch")
        if automatic:
            automatic_step = optimization.automatic_stepper()  # bound for this epoch
        while True:
            # epoch done? (inline: it runs before every batch)
            max_steps = trainer.max_steps
            if max_steps != -1 and trainer.global_step >= max_steps:
                break
            if current.ready == num_batches or batch_progress.is_last_batch:
                break
            if trainer.should_stop and self.can_stop_early():
                break
            try:
                batch = self._next_batch() if profiler is None else timed_fetch(self._next_batch)
            except StopIteration:
                break
            batch_idx = current.ready
            batch_progress.is_last_batch = self._train_done
            if transfer:
                batch = loops.to_device(batch, 0)
            total.ready += 1
            current.ready += 1
            results.batch = batch
            results.batch_size = None
            results.dataloader_idx = None
            output: Any = None
            if batch is None:
                warnings.warn(
                    "train_dataloader yielded None; the batch is skipped. If this is not intended, check the "
                    "dataset and collate_fn.",
                    stacklevel=2,
                )
            else:
                if has_batch_start:
                    response = hooks.callers["on_train_batch_start"](batch, batch_idx)
                    if response == -1:
                        total.processed += 1
                        current.processed += 1
                        break
                total.started += 1
                current.started += 1
                args = (batch, batch_idx) if takes_idx else (batch,)
                if profiler is not None:
                    output = timed_batch(automatic_step, args, batch_idx) if automatic \
                        else timed_batch(optimization.manual_step, args)
                elif automatic:
                    output = automatic_step(args, batch_idx)
                else:
                    output = optimization.manual_step(args)
            total.processed += 1
            current.processed += 1
            if trainer.lr_scheduler_configs:
                self.update_lr_schedulers("step", plateau=False)
                if self.ready_batches_reached():
                    self.update_lr_schedulers("epoch", plateau=False)
            if collect_outputs and output is not None:
                self._epoch_outputs.append(output)
            if has_batch_end:
                self.in_batch_end = True
                try:
                    hooks.callers["on_train_batch_end"](output, batch, batch_idx)
                finally:
                    self.in_batch_end = False
            self.finish_batch(results)

    def finish_batch(self, results: Results) -> None:
        """What follows on_train_batch_end: step logging, validation when due, plateau schedulers, step counter.

        Also run by an exact resume from a checkpoint written in on_train_batch_end, so the resumed run
        logs and validates exactly what the uninterrupted run did after that point.
        """
        loops = self._loops
        trainer = loops.trainer
        batch_progress = loops.state.fit.batch
        batch_progress.total.completed += 1
        current = batch_progress.current
        current.completed += 1
        self._batches_done_in_epoch = current.completed
        # should_accumulate() is always False without accumulation; skip the call (this runs every batch)
        accumulating = trainer.accumulate_grad_batches != 1
        if not (loops.plan.automatic and accumulating and self.should_accumulate()):
            # should_log_step() is False without loggers unless fast_dev_run: skip the call (every batch)
            if (trainer.loggers or trainer.fast_dev_run) and loops.should_log_step():
                loops.log_metrics(results.metrics(True)[1])
        results.batch = None
        # validation when due -- but not after a Ctrl-C/SIGTERM: the run stops after this step
        enabled = self._val_enabled_epoch if self.epoch_running else trainer.enable_validation
        if enabled and loops.stop.signum is None and self.should_check_val():
            self.validate(results)
        self.finish_after_validation()

    def validate(self, results: Results) -> None:
        """Validation inside fit (reference §2.1 step 13.6); training resumes afterwards."""
        loops = self._loops
        loops.trainer_state.stage = RunningStage.VALIDATING
        if not self.should_accumulate():
            loops.hooks.call_module("on_validation_model_zero_grad")
        loops.evaluation.run(RunningStage.VALIDATING, in_fit=True)
        loops.trainer_state.stage = RunningStage.TRAINING
        loops.metrics.activate(results)
        loops.metrics.set_on_step(True)

    def finish_after_validation(self) -> None:
        """The end of a batch after its validation; an exact resume from a checkpoint written during that
        validation (ModelCheckpoint in on_validation_end) runs just this part."""
        loops = self._loops
        trainer = loops.trainer
        if trainer.lr_scheduler_configs:
            self.update_lr_schedulers("step", plateau=True)
        if trainer.accumulate_grad_batches == 1 or not self.should_accumulate():
            loops.state.fit.batches_that_stepped += 1
        if loops.stop.signum is not None:
            loops.stop.raise_pending()

    # ================================================================================================
    # when to validate
    # ================================================================================================
    def should_check_val_epoch(self) -> bool:
        trainer = self._loops.trainer
        every = trainer.check_val_every_n_epoch
        # Inside the batch loop this runs after every batch: use the value computed at epoch start
        # (the sources cannot change mid-epoch) instead of re-inspecting the module each time.
        enabled = self._val_enabled_epoch if self.epoch_running else trainer.enable_validation
        return enabled and (every is None or (trainer.current_epoch + 1) % every == 0)

    def should_check_val(self) -> bool:
        """Whether validation runs after the current training batch (val_check_interval, every-n-epochs)."""
        loops = self._loops
        trainer = loops.trainer
        if not self.should_check_val_epoch():
            return False
        progress = loops.state.fit
        val_check_batch = loops.state.val_check_batch
        is_last = progress.batch.is_last_batch
        infinite = val_check_batch == INF
        if is_last and infinite:
            return True
        if trainer.should_stop and self.can_stop_early():
            return True
        seconds = loops.val_check_seconds
        if seconds is not None:
            return time.monotonic() - loops.state.last_val_time >= seconds
        is_check = is_last
        if isinstance(trainer.limit_train_batches, int) and infinite:
            is_check = progress.batch.current.ready % trainer.limit_train_batches == 0
        elif not infinite:
            assert val_check_batch is not None
            current = (progress.batch.total.ready - 1 if trainer.check_val_every_n_epoch is None
                       else progress.batch.current.ready - 1)
            is_check = (current + 1) % val_check_batch == 0
        return is_check

    # ================================================================================================
    # LR schedulers
    # ================================================================================================
    def update_lr_schedulers(self, interval: str, plateau: bool) -> None:
        """Step the schedulers whose interval/frequency is due (plateau ones only when `plateau`)."""
        loops = self._loops
        trainer = loops.trainer
        configs = trainer.lr_scheduler_configs
        if not configs or not loops.plan.automatic:
            return
        if interval == "step" and self.should_accumulate():
            return
        progress = loops.state.fit
        for config in configs:
            if plateau != config.reduce_on_plateau:
                continue
            index = (progress.batch.current.ready - 1 if interval == "step" else trainer.current_epoch) + 1
            if config.interval != interval or index % config.frequency != 0:
                continue
            metric = None
            if config.reduce_on_plateau:
                key = config.monitor
                metric = trainer.callback_metrics.get(key) if key is not None else None
                if metric is None:
                    available = list(trainer.callback_metrics)
                    if config.strict:
                        raise MisconfigurationException(
                            f"ReduceLROnPlateau conditioned on metric {key} which is not available. Available "
                            f"metrics are: {available}. Condition can be set using `monitor` key in lr scheduler dict"
                        )
                    warnings.warn(
                        f"ReduceLROnPlateau conditioned on metric {key} which is not available but strict is set to "
                        f"`False`. Skipping learning rate update. Available metrics: {available}.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    continue
            progress.scheduler.increment("ready")
            loops.hooks.call_module("lr_scheduler_step", config.scheduler, metric)
            progress.scheduler.increment("completed")

    # ================================================================================================
    # checkpoint position
    # ================================================================================================
    def checkpoint_position(self) -> dict[str, Any]:
        """Where fit stands, for the checkpoint's `fit_loop.state_dict` (exact mid-epoch resume)."""
        loops = self._loops
        fit = loops.state.fit
        # inside an epoch's batch loop, including a validation run in the middle of it
        in_batches = loops.trainer_state.fn == TrainerFn.FITTING and self.epoch_running
        # written from on_train_batch_end: that batch has trained; the resumed run finishes it (exact resume)
        tail_pending = in_batches and self.in_batch_end
        # written during the validation that follows a batch: the resumed run finishes what comes after it
        val_tail_pending = in_batches and not tail_pending and loops.trainer_state.stage == RunningStage.VALIDATING
        position: dict[str, Any] = {
            "epoch": fit.epoch.current.processed if in_batches else max(fit.epoch.current.processed - 1, 0),
            "batches_done": (fit.batch.current.processed if tail_pending else self._batches_done_in_epoch)
            if in_batches else 0,
            "epoch_finished": not in_batches,
            "tail_pending": tail_pending,
            "val_tail_pending": val_tail_pending,
            "rng": capture_rng(),
        }
        if in_batches:
            position["results"] = loops.results("train").state_dict()
            if self._epoch_start_rng is not None:
                position["epoch_start_rng"] = self._epoch_start_rng
        return position
