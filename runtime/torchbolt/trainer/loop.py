"""The training and evaluation loops, written top to bottom.

`Loop.fit` reads like the lifecycle in reference §2.1: sanity check, then `for epoch` / `for batch` with
the optimizer closure, validation when due, epoch end. Hooks are reached only through the dispatcher
(`trainer._hooks`), which knows the documented order; the loop decides *when*.
"""

from __future__ import annotations

import inspect
import math
import random
import time
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from torchbolt.catalog import REMOVED_HOOKS
from torchbolt.trainer.data import (
    as_train_loader,
    check_iterable,
    flatten_loaders,
    install_worker_seeding,
    loader_length,
    parse_num_batches,
    without_shuffle,
)
from torchbolt.trainer.dispatch import (
    BACKWARD_ACTION,
    EVAL_NEXT_ACTIONS,
    PREDICT_NEXT_ACTION,
    TRAIN_NEXT_ACTION,
    fetch,
    is_overridden,
    profiled_transfer,
)
from torchbolt.trainer.metrics import Results
from torchbolt.trainer.state import RunningStage
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

_INF = float("inf")


def _reached(current: int, maximum: int) -> bool:
    return maximum != -1 and current >= maximum


def _takes_positional(fn: Callable[..., Any], count: int) -> bool:
    """Whether `fn` accepts at least `count` positional arguments (or *args)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = 0
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= count


def capture_rng() -> dict[str, Any]:
    """The global RNG states (torch, Python, NumPy) in a form safe to store in checkpoints."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        import numpy as np

        np_state: Any = np.random.get_state()
        kind, keys, pos, has_gauss, cached = np_state
        state["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached))
    except ImportError:
        pass
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore RNG states captured by `capture_rng`."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]) if isinstance(py, (list, tuple)) else py)
    if "numpy" in state:
        try:
            import numpy as np

            kind, keys, pos, has_gauss, cached = state["numpy"]
            np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
        except ImportError:
            pass


class _ModuleModes:
    """Remembers the train/eval mode of every submodule so evaluation can restore it exactly."""

    def __init__(self) -> None:
        self._modes: dict[torch.nn.Module, bool] = {}

    def capture(self, module: torch.nn.Module) -> None:
        self._modes = {m: m.training for m in module.modules()}

    def restore(self, module: torch.nn.Module) -> None:
        for m in module.modules():
            if m in self._modes:
                m.training = self._modes[m]
        self._modes = {}


class Loop:
    """Runs the entry points' loops for one Trainer."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.train_source: Any = None  # what train_dataloader returned (or fit's argument)
        self.train_loader: Any = None
        self.num_training_batches: int | float = _INF
        self.val_loaders: list[Any] | None = None
        self.val_source: Any = None
        self.num_val_batches: list[int | float] = []
        self.eval_loaders: dict[str, list[Any]] = {}
        self.num_eval_batches: dict[str, list[int | float]] = {}
        self._last_train_reload = -1
        self._last_val_reload = -1
        self._modes = _ModuleModes()
        self._results: dict[str, Results] = {}
        self._warned_epoch_end: set[str] = set()
        self._step_takes_idx: dict[str, bool] = {}
        self._train_iter: Iterator[Any] | None = None
        self._fetched = 0
        self._prefetched: list[Any] = []
        self._train_done = False
        self._resume: dict[str, Any] | None = None
        self._epoch_start_rng: dict[str, Any] | None = None
        self._batches_done_in_epoch = 0
        self.predictions: list[Any] | None = None
        self._epoch_outputs: list[Any] = []

    # ================================================================================================
    # Shared pieces
    # ================================================================================================
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

    def request_loaders(self, hook: str) -> Any:
        """Ask the DataModule (preferred) or the module for its `hook` dataloaders."""
        trainer = self.trainer
        dm = trainer.datamodule
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        hooks = trainer._hooks
        if dm is not None and is_overridden(dm, hook, LightningDataModule):
            ctx = trainer._ctx
            prev, ctx.fx = ctx.fx, hook
            try:
                return getattr(dm, hook)()
            finally:
                ctx.fx = prev
        if is_overridden(self.module, hook, LightningModule):
            return hooks.call_module(hook)
        return None

    def source_defined(self, hook: str) -> bool:
        """Whether a dataloader source exists for `hook` (argument, DataModule or module override)."""
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        trainer = self.trainer
        if trainer._loader_args.get(hook) is not None:
            return True
        dm = trainer.datamodule
        if dm is not None and is_overridden(dm, hook, LightningDataModule):
            return True
        return is_overridden(self.module, hook, LightningModule)

    def step_args(self, name: str, batch: Any, batch_idx: int, dataloader_idx: int | None) -> tuple[Any, ...]:
        """Positional arguments for a step method: batch, then batch_idx and dataloader_idx when accepted."""
        takes = self._step_takes_idx.get(name)
        if takes is None:
            takes = self._step_takes_idx[name] = _takes_positional(getattr(self.module, name), 2)
        if not takes:
            return (batch,)
        if dataloader_idx is None:
            return (batch, batch_idx)
        return (batch, batch_idx, dataloader_idx)

    def transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Run the batch-transfer hooks (DataModule's win over the module's) and precision conversion."""
        trainer = self.trainer
        owners = trainer._batch_hook_owner
        precision = trainer._precision
        profiler = trainer._hooks._profiler
        if profiler is not None:
            return profiled_transfer(trainer, profiler, batch, dataloader_idx)
        if not owners and precision.is_noop:
            return batch  # the common CPU case: nothing to convert, no hook overridden
        batch = precision.convert_input(batch)
        for name in ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"):
            owner = trainer._batch_hook_owner.get(name)
            if owner is None:
                continue
            ctx = trainer._ctx
            prev, ctx.fx = ctx.fx, name
            try:
                if name == "transfer_batch_to_device":
                    batch = getattr(owner, name)(batch, trainer._device, dataloader_idx)
                else:
                    batch = getattr(owner, name)(batch, dataloader_idx)
            finally:
                ctx.fx = prev
        return batch

    def _warn_epoch_end(self, name: str) -> None:
        if name in self._warned_epoch_end:
            return
        self._warned_epoch_end.add(name)
        removed = REMOVED_HOOKS[name]
        warnings.warn(
            f"{type(self.module).__name__}.{name}(outputs) is a Lightning 1.x hook that 2.x removed; torchbolt still "
            f"calls it with the collected step outputs. To migrate: {removed.replacement}.",
            DeprecationWarning,
            stacklevel=2,
        )

    def _legacy(self, name: str) -> bool:
        module = self.module
        return callable(getattr(type(module), name, None)) or callable(module.__dict__.get(name))

    # ================================================================================================
    # Backward and optimizer step (used by automatic and manual optimization)
    # ================================================================================================
    def run_backward(self, loss: Tensor, optimizer: Any, *args: Any, **kwargs: Any) -> None:
        """on_before_backward, the module's backward hook, on_after_backward."""
        hooks = self.trainer._hooks
        profiler = hooks._profiler
        if profiler is not None:
            profiler.start(BACKWARD_ACTION)
        hooks.call("on_before_backward", loss)
        hooks.call_module("backward", loss, *args, **kwargs)
        hooks.call("on_after_backward")
        if profiler is not None:
            profiler.stop(BACKWARD_ACTION)

    def run_optimizer_step(self, optimizer: torch.optim.Optimizer, closure: Callable[[], Any], **kwargs: Any) -> Any:
        """optimizer.step with a closure that also runs on_before_optimizer_step and gradient clipping."""
        trainer = self.trainer
        hooks = trainer._hooks
        module = self.module
        clip = module.automatic_optimization and (trainer._clip_overridden or trainer.gradient_clip_val
                                                  or hooks._profiler is not None)
        if not clip and not hooks.has("on_before_optimizer_step"):
            # Nothing to run between the closure and the update: the wrapper below would only add a call.
            return optimizer.step(closure=closure, **kwargs)

        def closure_then_hooks() -> Any:
            result = closure()
            hooks.call("on_before_optimizer_step", optimizer)
            if clip:
                hooks.call_module(
                    "configure_gradient_clipping", optimizer, gradient_clip_val=trainer.gradient_clip_val,
                    gradient_clip_algorithm=trainer.gradient_clip_algorithm,
                )
            return result

        return optimizer.step(closure=closure_then_hooks, **kwargs)

    # ================================================================================================
    # fit
    # ================================================================================================
    def fit(self) -> None:
        """Sanity check, then train epoch after epoch until a limit is reached or should_stop is set."""
        trainer = self.trainer
        progress = trainer._progress.fit
        module = self.module
        hooks = trainer._hooks
        module.zero_grad()

        if self.should_sanity_check():
            rng = capture_rng()  # the sanity check must not shift the training's random streams
            try:
                self.sanity_check()
            finally:
                restore_rng(rng)

        trainer.state.stage = RunningStage.TRAINING
        self._epoch_running = False
        self.setup_train_data()
        if self.num_training_batches == 0 or trainer.limit_train_batches == 0:
            return
        self._resume = trainer._resume_position()
        progress.epoch.current.completed = progress.epoch.current.processed
        if self._resume is None or self._resume.get("epoch_finished", True):
            if self._resume is not None and self._resume.get("rng") is not None:
                # resuming at an epoch boundary: continue the random streams where the checkpoint left them
                restore_rng(self._resume["rng"])
            # Lightning creates the first epoch's iterator here, before on_train_start (RNG draw order).
            self._open_train_iter()
        if self.val_loaders is None and self.should_check_val_epoch():
            self.setup_val_data()
        hooks.call("on_train_start")

        with torch.autograd.set_detect_anomaly(trainer._detect_anomaly):
            while not self.fit_done():
                self.run_epoch()
        self._train_iter = None
        hooks.call("on_train_end")

    def fit_done(self) -> bool:
        trainer = self.trainer
        progress = trainer._progress.fit
        if self.num_training_batches == 0:
            return True
        if _reached(trainer.global_step, trainer.max_steps):
            return True
        if _reached(progress.epoch.current.processed, trainer.max_epochs):
            progress.epoch.current.completed = progress.epoch.current.processed
            return True
        return bool(trainer.should_stop and self.can_stop_early())

    def can_stop_early(self) -> bool:
        trainer = self.trainer
        progress = trainer._progress.fit
        met_epochs = progress.epoch.current.processed >= trainer.min_epochs if trainer.min_epochs else True
        met_steps = trainer.global_step >= trainer.min_steps if trainer.min_steps else True
        return met_epochs and met_steps

    def should_check_val_epoch(self) -> bool:
        trainer = self.trainer
        every = trainer.check_val_every_n_epoch
        # Inside the batch loop this runs after every batch: use the value computed at epoch start
        # (the sources cannot change mid-epoch) instead of re-inspecting the module each time.
        enabled = self._val_enabled_epoch if self._epoch_running else trainer.enable_validation
        return enabled and (every is None or (trainer.current_epoch + 1) % every == 0)

    def setup_train_data(self) -> None:
        """Request the training dataloader (at the start, or again when a reload is due)."""
        trainer = self.trainer
        epoch = trainer.current_epoch
        every = trainer.reload_dataloaders_every_n_epochs
        if self.train_loader is not None and not (every and epoch - self._last_train_reload >= every):
            return
        source = trainer._loader_args.get("train_dataloader")
        if source is None:
            source = self.request_loaders("train_dataloader")
            if source is None:
                raise MisconfigurationException(
                    "No training data: define train_dataloader() on the LightningModule or DataModule, or pass "
                    "train_dataloaders= to trainer.fit()."
                )
        self.train_source = source
        loader = as_train_loader(source)
        if trainer.overfit_batches > 0:
            loader = without_shuffle(loader, "train")
        install_worker_seeding(loader)
        self.train_loader = loader
        self._last_train_reload = epoch
        length = loader_length(loader)
        limit = trainer.overfit_batches if trainer.overfit_batches > 0 else trainer.limit_train_batches
        self.num_training_batches = parse_num_batches("train", length, limit)
        if self.num_training_batches == 0:
            return
        interval = trainer.val_check_interval
        if trainer._val_check_time_interval is not None:
            # time-based validation (Lightning 2.6): no batch schedule; the clock starts with training
            trainer.val_check_batch = None  # type: ignore[assignment]
            trainer._last_val_time = time.monotonic()
        elif isinstance(interval, int):
            trainer.val_check_batch = interval
            if interval > self.num_training_batches and trainer.check_val_every_n_epoch is not None:
                raise ValueError(
                    f"`val_check_interval` ({interval}) must be less than or equal to the number of the training "
                    f"batches ({self.num_training_batches}). If you want to disable validation set "
                    "`limit_val_batches` to 0.0 instead. If you want to validate based on the total training "
                    "batches, set `check_val_every_n_epoch=None`."
                )
        elif self.num_training_batches == _INF:
            if interval != 1.0:
                raise MisconfigurationException(
                    "When using an IterableDataset without a length for `train_dataloader`, `Trainer(val_check_interval)` "
                    "must be `1.0` or an int: an int checks validation every that many training batches."
                )
            trainer.val_check_batch = _INF
        else:
            trainer.val_check_batch = max(1, int(self.num_training_batches * interval))
        self._train_iter = None

    def _open_train_iter(self) -> None:
        self._epoch_start_rng = capture_rng()
        self._train_iter = iter(self.train_loader)
        self._iter_fresh = True
        self._fetched = 0
        self._train_done = False
        self._prefetched = []
        if self.num_training_batches == _INF:
            # No length: fetch one batch ahead (as Lightning does) so the last batch is known when it comes.
            try:
                self._prefetched.append(next(self._train_iter))
            except StopIteration:
                self._train_done = True

    _iter_fresh = False
    _epoch_running = False
    _val_enabled_epoch = False

    def _next_batch(self) -> Any:
        """The next training batch (StopIteration at the end); tracks whether it is the last one."""
        if self._fetched >= self.num_training_batches:
            raise StopIteration
        assert self._train_iter is not None
        if self.num_training_batches == _INF:
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
        self._train_done = self._fetched >= self.num_training_batches
        return batch

    def _set_sampler_epoch(self, epoch: int) -> None:
        loaders = getattr(self.train_loader, "loaders", [self.train_loader])
        for dl in loaders:
            for obj in (getattr(dl, "sampler", None), getattr(getattr(dl, "batch_sampler", None), "sampler", None)):
                if obj is not None and callable(getattr(obj, "set_epoch", None)):
                    obj.set_epoch(epoch)

    def run_epoch(self) -> None:
        """One training epoch: epoch-start hooks, the batch loop, then epoch-end hooks and schedulers."""
        trainer = self.trainer
        hooks = trainer._hooks
        progress = trainer._progress.fit
        metrics = trainer._metrics
        epoch = progress.epoch.current.processed
        self.setup_train_data()
        self._set_sampler_epoch(epoch)
        resume = self._resume
        self._resume = None
        skip = 0
        if resume is not None and resume.get("epoch") == epoch and not resume.get("epoch_finished", False):
            skip = int(resume.get("batches_done", 0))
        results = self.results("train")
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
                self.trainer._progress.fit.batch.current.completed = skip - 1
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

        self._val_enabled_epoch = trainer.enable_validation
        # stays True when the batch loop raises, so a checkpoint written by on_exception (OnExceptionCheckpoint)
        # records the mid-epoch position; fit() clears it at the start of the next run
        self._epoch_running = True
        if tail_pending:
            self.finish_batch(results, self.module.automatic_optimization)
        elif val_tail_pending:
            self.finish_after_validation()
        profiler = hooks._profiler
        if profiler is not None:
            with profiler.profile("run_training_epoch"):
                self.batch_loop(results)
        else:
            self.batch_loop(results)
        self._epoch_running = False

        # ---- epoch end -------------------------------------------------------------------------
        metrics.set_on_step(False)
        progress.epoch.increment("processed")
        if self._legacy("training_epoch_end"):
            self._warn_epoch_end("training_epoch_end")
            hooks.call_module("training_epoch_end", self._epoch_outputs)
        self._epoch_outputs = []
        hooks.call("on_train_epoch_end")
        metrics.epoch_metrics()
        if self.ready_batches_reached():
            self.update_lr_schedulers("epoch", plateau=True)
        progress.batches_that_stepped -= 1  # loggers expect epoch metrics at the last step's index
        self.log_metrics(metrics.epoch_metrics()[1])
        progress.batches_that_stepped += 1
        metrics.reset_results(results)
        progress.epoch.increment("completed")
        trainer._check_signal()

    def _fast_forward(self, resume: dict[str, Any], skip: int) -> None:
        """Resume mid-epoch: replay the epoch's shuffle from its saved RNG state and skip `skip` batches."""
        progress = self.trainer._progress.fit
        start_rng = resume.get("epoch_start_rng")
        if start_rng is not None:
            restore_rng(start_rng)
        self._open_train_iter()
        for _ in range(min(skip, int(self.num_training_batches) if self.num_training_batches != _INF else skip)):
            self._next_batch()
        self._batches_done_in_epoch = skip
        if start_rng is not None and resume.get("rng") is not None:
            restore_rng(resume["rng"])
        progress.batch.current.ready = progress.batch.current.completed = skip
        progress.batch.current.started = progress.batch.current.processed = skip

    def ready_batches_reached(self) -> bool:
        progress = self.trainer._progress.fit
        return progress.batch.current.ready == self.num_training_batches or progress.batch.is_last_batch

    def should_accumulate(self) -> bool:
        trainer = self.trainer
        accumulate = trainer.accumulate_grad_batches
        if accumulate == 1:
            return False  # every batch steps (the common case; this runs several times per batch)
        progress = trainer._progress.fit
        done = progress.batch.current.ready % accumulate == 0
        return not done and not self.ready_batches_reached()

    def batch_loop(self, results: Results) -> None:
        """Every training batch of the epoch (see reference §2.1 step 13)."""
        trainer = self.trainer
        hooks = trainer._hooks
        progress = trainer._progress.fit
        batch_progress = progress.batch
        module = self.module
        automatic = module.automatic_optimization
        collect_outputs = self._legacy("training_epoch_end")
        has_batch_start = hooks.has("on_train_batch_start")
        has_batch_end = hooks.has("on_train_batch_end")
        # Fixed for the whole fit (set up before the first epoch): decided once here, not per batch.
        profiler = hooks._profiler
        needs_transfer = bool(trainer._batch_hook_owner) or not trainer._precision.is_noop or profiler is not None
        self._default_step = automatic and self._uses_default_step()
        self.step_args("training_step", None, 0, None)  # fills the cached signature check
        takes_idx = self._step_takes_idx["training_step"]
        current = batch_progress.current
        while True:
            # epoch_training_done(), inline: it runs before every batch
            max_steps = trainer.max_steps
            if max_steps != -1 and trainer.global_step >= max_steps:
                break
            if current.ready == self.num_training_batches or batch_progress.is_last_batch:
                break
            if trainer.should_stop and self.can_stop_early():
                break
            if profiler is not None:
                profiler.start(TRAIN_NEXT_ACTION)
            try:
                batch = self._next_batch()
            except StopIteration:
                break
            finally:
                if profiler is not None:
                    profiler.stop(TRAIN_NEXT_ACTION)
            batch_idx = current.ready
            batch_progress.is_last_batch = self._train_done
            if needs_transfer:
                batch = self.transfer(batch, 0)
            batch_progress.increment("ready")
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
                    response = hooks.call("on_train_batch_start", batch, batch_idx)
                    if response == -1:
                        batch_progress.increment("processed")
                        break
                batch_progress.increment("started")
                args = (batch, batch_idx) if takes_idx else (batch,)
                if profiler is not None:
                    profiler.start("run_training_batch")
                if automatic:
                    output = self.automatic_step(args, batch_idx)
                else:
                    output = self.manual_step(args)
                if profiler is not None:
                    profiler.stop("run_training_batch")
            batch_progress.increment("processed")
            if trainer.lr_scheduler_configs:
                self.update_lr_schedulers("step", plateau=False)
                if self.ready_batches_reached():
                    self.update_lr_schedulers("epoch", plateau=False)
            if collect_outputs and output is not None:
                self._epoch_outputs.append(output)
            if has_batch_end:
                # a checkpoint written from here must let a resumed run finish this batch (see finish_batch)
                self._in_batch_end = True
                try:
                    hooks.call("on_train_batch_end", output, batch, batch_idx)
                finally:
                    self._in_batch_end = False
            self.finish_batch(results, automatic)

    _in_batch_end = False
    _default_step = False

    def _uses_default_step(self) -> bool:
        """Whether the optimizer step, zero_grad and backward are all the module's defaults with no hook or
        clipping around them (decided once per epoch, like the dispatcher's table). Then `automatic_step`
        runs their default bodies itself, with the same hook context, instead of going through
        `optimizer_step` -> LightningOptimizer.step -> run_optimizer_step and two more module methods."""
        from torchbolt.core.module import LightningModule

        trainer = self.trainer
        hooks = trainer._hooks
        module = self.module
        return (
            trainer._precision.is_noop
            and not trainer._clip_overridden
            and len(trainer._lightning_optimizers) == 1
            and not any(hooks.has(name) for name in ("on_before_optimizer_step", "on_before_backward",
                                                     "on_after_backward"))
            and not any(is_overridden(module, name, LightningModule)
                        for name in ("optimizer_step", "optimizer_zero_grad", "backward"))
        )

    def finish_batch(self, results: Results, automatic: bool) -> None:
        """What follows on_train_batch_end: step logging, validation when due, plateau schedulers, step counter.

        Also run by an exact resume from a checkpoint written in on_train_batch_end, so the resumed run
        logs and validates exactly what the uninterrupted run did after that point.
        """
        trainer = self.trainer
        hooks = trainer._hooks
        progress = trainer._progress.fit
        batch_progress = progress.batch
        metrics = trainer._metrics
        batch_progress.increment("completed")
        self._batches_done_in_epoch = batch_progress.current.completed
        # should_accumulate() is always False without accumulation; skip the call (this runs every batch)
        accumulating = trainer.accumulate_grad_batches != 1
        if not (automatic and accumulating and self.should_accumulate()):
            if trainer._should_log_step():
                self.log_metrics(results.metrics(True)[1])
        results.batch = None
        # -- after the batch: validation when due, plateau schedulers, step counter ------------------
        # (the first test of should_check_val_epoch, inline: with validation off this is all that runs)
        enabled = self._val_enabled_epoch if self._epoch_running else trainer.enable_validation
        if enabled and self.should_check_val():
            trainer.validating = True
            if not self.should_accumulate():
                hooks.call_module("on_validation_model_zero_grad")
            self.run_evaluation(RunningStage.VALIDATING, in_fit=True)
            trainer.training = True
            metrics.activate(results)
            metrics.set_on_step(True)
        self.finish_after_validation()

    def finish_after_validation(self) -> None:
        """The end of a batch after its validation; an exact resume from a checkpoint written during that
        validation (ModelCheckpoint in on_validation_end) runs just this part."""
        trainer = self.trainer
        if trainer.lr_scheduler_configs:
            self.update_lr_schedulers("step", plateau=True)
        if trainer.accumulate_grad_batches == 1 or not self.should_accumulate():
            trainer._progress.fit.batches_that_stepped += 1
        if trainer._received_signal is not None:
            trainer._check_signal()

    def epoch_training_done(self) -> bool:
        trainer = self.trainer
        if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
            return True
        return self.ready_batches_reached()

    def automatic_step(self, args: tuple[Any, ...], batch_idx: int) -> dict[str, Any]:
        """training_step inside the optimizer closure, with zero_grad and backward (reference §2.1)."""
        trainer = self.trainer
        hooks = trainer._hooks
        progress = trainer._progress.fit
        accumulate = trainer.accumulate_grad_batches
        optimizer = trainer.optimizers[0]
        precision = trainer._precision
        step_output: list[Any] = [None, None]  # (closure loss, extras)
        zero_grad = batch_idx % accumulate == 0
        has_before_zero_grad = hooks.has("on_before_zero_grad")
        epoch = trainer.current_epoch
        # the defaults inlined (see _uses_default_step); clipping is read per step as callbacks may change it
        direct = self._default_step and not trainer.gradient_clip_val
        ctx = trainer._ctx
        module = self.module

        inline_step = precision.is_noop and hooks._profiler is None

        def step_closure() -> Tensor | None:
            if inline_step:
                # hooks.call_module("training_step", *args), inline: one call level less on every batch
                prev, ctx.fx = ctx.fx, "training_step"
                try:
                    out = module.training_step(*args)
                finally:
                    ctx.fx = prev
            else:
                with precision.forward_context():
                    out = hooks.call_module("training_step", *args)
            loss, extra = (out, {}) if type(out) is Tensor else _split_training_output(out)
            if loss is not None and accumulate != 1:
                loss = loss / accumulate
            step_output[0] = loss
            step_output[1] = extra
            if zero_grad:
                if has_before_zero_grad:
                    hooks.call("on_before_zero_grad", optimizer)
                progress.optim.zero_grad.increment("ready")
                progress.optim.zero_grad.increment("started")
                if direct:
                    prev, ctx.fx = ctx.fx, "optimizer_zero_grad"
                    try:
                        optimizer.zero_grad()  # LightningModule.optimizer_zero_grad's body
                    finally:
                        ctx.fx = prev
                else:
                    hooks.call_module("optimizer_zero_grad", epoch, batch_idx, optimizer)
                progress.optim.zero_grad.increment("completed")
            if loss is not None:
                if direct:
                    prev, ctx.fx = ctx.fx, "backward"
                    try:
                        loss.backward()  # LightningModule.backward's body; no backward hooks to run around it
                    finally:
                        ctx.fx = prev
                else:
                    self.run_backward(loss, optimizer)
                # no clone: nothing writes into the loss in place (saves ~4 µs/step); one detached tensor
                # serves both the closure's result and the batch outputs
                detached = step_output[0] = loss.detach()
                return detached
            if not self._warned_none:
                self._warned_none = True
                warnings.warn(
                    "`training_step` returned `None`; the optimizer step is skipped for that batch. If this was on "
                    "purpose, ignore this warning.",
                    stacklevel=2,
                )
            return None

        def closure() -> Tensor | None:
            # Grad mode is normally on already; entering torch.enable_grad() every step costs ~1 µs.
            if torch.is_grad_enabled():
                return step_closure()
            with torch.enable_grad():
                return step_closure()

        if self.should_accumulate():
            closure()
        else:
            progress.optim.step.increment("ready")
            if direct:
                # What LightningModule.optimizer_step -> LightningOptimizer.step -> run_optimizer_step amount to
                # with no hook or clipping: the wrapped optimizer's step with the closure.
                prev, ctx.fx = ctx.fx, "optimizer_step"
                try:
                    trainer._lightning_optimizers[0]._optimizer.step(closure=closure)
                finally:
                    ctx.fx = prev
            else:
                hooks.call_module("optimizer_step", epoch, batch_idx, trainer._lightning_optimizers[0], closure)
            progress.optim.step.increment("completed")
        loss = step_output[0]
        if loss is None:
            return {}
        extra = step_output[1]
        return {"loss": loss, **extra} if extra else {"loss": loss}

    _warned_none = False

    def manual_step(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """training_step under manual optimization: the user calls backward and optimizer steps."""
        trainer = self.trainer
        precision = trainer._precision
        if precision.is_noop:
            out = trainer._hooks.call_module("training_step", *args)
        else:
            with precision.forward_context():
                out = trainer._hooks.call_module("training_step", *args)
        if isinstance(out, dict):
            result = dict(out)
        elif isinstance(out, Tensor):
            result = {"loss": out}
        elif out is None:
            result = {}
        else:
            raise MisconfigurationException(
                "In manual optimization, `training_step` must either return a Tensor or have no return "
                f"(got {type(out).__name__})."
            )
        if "loss" in result and isinstance(result["loss"], Tensor):
            result["loss"] = result["loss"].detach()
        return result

    def update_lr_schedulers(self, interval: str, plateau: bool) -> None:
        """Step the schedulers whose interval/frequency is due (plateau ones only when `plateau`)."""
        trainer = self.trainer
        configs = trainer.lr_scheduler_configs
        if not configs or not self.module.automatic_optimization:
            return
        if interval == "step" and self.should_accumulate():
            return
        progress = trainer._progress.fit
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
            trainer._hooks.call_module("lr_scheduler_step", config.scheduler, metric)
            progress.scheduler.increment("completed")

    def should_check_val(self) -> bool:
        """Whether validation runs after the current training batch (val_check_interval, every-n-epochs)."""
        trainer = self.trainer
        if not self.should_check_val_epoch():
            return False
        progress = trainer._progress.fit
        is_last = progress.batch.is_last_batch
        infinite = trainer.val_check_batch == _INF
        if is_last and infinite:
            return True
        if trainer.should_stop and self.can_stop_early():
            return True
        seconds = trainer._val_check_time_interval
        if seconds is not None:
            return time.monotonic() - trainer._last_val_time >= seconds
        is_check = is_last
        if isinstance(trainer.limit_train_batches, int) and infinite:
            is_check = progress.batch.current.ready % trainer.limit_train_batches == 0
        elif not infinite:
            current = (progress.batch.total.ready - 1 if trainer.check_val_every_n_epoch is None
                       else progress.batch.current.ready - 1)
            is_check = (current + 1) % trainer.val_check_batch == 0
        return is_check

    # ================================================================================================
    # Evaluation: sanity check, validation in fit, validate, test
    # ================================================================================================
    def should_sanity_check(self) -> bool:
        trainer = self.trainer
        return (trainer.enable_validation and trainer.num_sanity_val_steps > 0
                and trainer._resume_position() is None and not trainer._restored)

    def sanity_check(self) -> None:
        trainer = self.trainer
        hooks = trainer._hooks
        stage = trainer.state.stage
        trainer.sanity_checking = True
        trainer._metrics.reset_metrics()
        hooks.call("on_sanity_check_start")
        self.run_evaluation(RunningStage.SANITY_CHECKING, in_fit=True)
        hooks.call("on_sanity_check_end")
        trainer._metrics.reset_metrics()
        trainer._progress.fit.val_batch.total.reset()
        trainer._progress.fit.val_batch.reset_current()
        trainer.sanity_checking = False
        trainer.state.stage = stage

    def setup_val_data(self) -> None:
        """Request the validation dataloaders for fit (once, or when a reload is due)."""
        trainer = self.trainer
        every = trainer.reload_dataloaders_every_n_epochs
        epoch = trainer.current_epoch
        if self.val_loaders is not None and not (every and epoch - self._last_val_reload >= every):
            return
        source = trainer._loader_args.get("val_dataloaders")
        if source is None:
            source = self.request_loaders("val_dataloader")
        loaders, _ = flatten_loaders(source)
        for dl in loaders:
            check_iterable(dl, "val")
        if trainer.overfit_batches > 0:
            loaders = [without_shuffle(dl, "val") for dl in loaders]
        for dl in loaders:
            install_worker_seeding(dl)
        self.val_source = source
        self.val_loaders = loaders
        self._last_val_reload = epoch
        limit = trainer.overfit_batches if trainer.overfit_batches > 0 else trainer.limit_val_batches
        self.num_val_batches = [parse_num_batches("val", loader_length(dl), limit) for dl in loaders]

    def setup_eval_data(self, stage: str) -> list[Any]:
        """Dataloaders for trainer.validate / test / predict (requested on every call)."""
        trainer = self.trainer
        hook = {"validate": "val_dataloader", "test": "test_dataloader", "predict": "predict_dataloader"}[stage]
        source = trainer._loader_args.get(hook)
        if source is None:
            source = self.request_loaders(hook)
            if source is None:
                raise MisconfigurationException(
                    f"No {hook.split('_')[0]} data: define {hook}() on the LightningModule or DataModule, or pass "
                    f"dataloaders= to trainer.{stage}()."
                )
        loaders, _ = flatten_loaders(source)
        prefix = hook.split("_")[0]
        for dl in loaders:
            check_iterable(dl, prefix)
            install_worker_seeding(dl)
        limit = {"validate": trainer.limit_val_batches, "test": trainer.limit_test_batches,
                 "predict": trainer.limit_predict_batches}[stage]
        self.eval_loaders[stage] = loaders
        self.num_eval_batches[stage] = [parse_num_batches(prefix, loader_length(dl), limit) for dl in loaders]
        return loaders

    def run_evaluation(self, stage: RunningStage, in_fit: bool) -> list[dict[str, float]]:
        """One evaluation run (reference §2.1 step 9/13.6 and §2.3); returns logged metrics per dataloader."""
        trainer = self.trainer
        hooks = trainer._hooks
        metrics = trainer._metrics
        module = self.module
        testing = stage == RunningStage.TESTING
        sanity = stage == RunningStage.SANITY_CHECKING
        prev_stage = trainer.state.stage
        trainer.state.stage = stage
        if in_fit:
            self.setup_val_data()
            loaders = self.val_loaders or []
            max_batches = list(self.num_val_batches)
            batch_progress = trainer._progress.fit.val_batch
        else:
            key = "test" if testing else "validate"
            loaders = self.eval_loaders[key]
            max_batches = list(self.num_eval_batches[key])
            batch_progress = trainer._progress.test_batch if testing else trainer._progress.validate_batch
        if sanity:
            steps = trainer.num_sanity_val_steps
            max_batches = [min(steps, n) for n in max_batches]
        if sum(max_batches) == 0:
            trainer.state.stage = prev_stage
            return []
        prefix = "test" if testing else "validation"
        step_name = "test_step" if testing else "validation_step"
        legacy_end = "test_epoch_end" if testing else "validation_epoch_end"
        collect = self._legacy(legacy_end)
        if collect:
            self._warn_epoch_end(legacy_end)
        multiple = len(loaders) > 1
        results = self.results("sanity" if sanity else (stage.value if not in_fit else "val"))
        prev_results = metrics.active
        prev_on_step = metrics.on_step
        metrics.activate(results)
        metrics.set_on_step(True)
        batch_progress.reset_current()
        if in_fit:
            batch_progress.total.reset()
        if in_fit:
            for dl in loaders:
                for obj in (getattr(dl, "sampler", None),):
                    if obj is not None and callable(getattr(obj, "set_epoch", None)):
                        obj.set_epoch(trainer._progress.fit.epoch.current.processed)
        first_iter = iter(loaders[0]) if max_batches[0] else None
        grad_ctx = torch.inference_mode() if trainer.inference_mode else torch.no_grad()
        logged_outputs: list[dict[str, Tensor]] = []
        all_outputs: list[list[Any]] = []
        with grad_ctx:
            self._modes.capture(module)
            hooks.call_module("on_test_model_eval" if testing else "on_validation_model_eval")
            hooks.call(f"on_{prefix}_start")
            hooks.call(f"on_{prefix}_epoch_start")
            precision = trainer._precision
            has_start = hooks.has(f"on_{prefix}_batch_start")
            has_end = hooks.has(f"on_{prefix}_batch_end")
            for dl_idx, loader in enumerate(loaders):
                outputs: list[Any] = []
                limit = max_batches[dl_idx]
                if limit == 0:
                    all_outputs.append(outputs)
                    continue
                iterator = first_iter if dl_idx == 0 else iter(loader)
                assert iterator is not None
                batch_idx = 0
                log_idx = dl_idx if multiple else None
                fetch_action = EVAL_NEXT_ACTIONS[stage.value]
                profiler = hooks._profiler
                while batch_idx < limit:
                    try:
                        batch = fetch(iterator, profiler, fetch_action)
                    except StopIteration:
                        break
                    batch_progress.is_last_batch = batch_idx + 1 >= limit
                    batch = self.transfer(batch, dl_idx)
                    batch_progress.increment("ready")
                    results.batch = batch
                    results.batch_size = None
                    results.dataloader_idx = log_idx
                    hook_args = (batch, batch_idx) if log_idx is None else (batch, batch_idx, log_idx)
                    if has_start:
                        hooks.call(f"on_{prefix}_batch_start", *hook_args)
                    batch_progress.increment("started")
                    args = self.step_args(step_name, batch, batch_idx, log_idx)
                    if precision.is_noop:
                        output = hooks.call_module(step_name, *args)
                    else:
                        with precision.forward_context():
                            output = hooks.call_module(step_name, *args)
                    batch_progress.increment("processed")
                    if has_end:
                        hooks.call(f"on_{prefix}_batch_end", output, *hook_args)
                    if collect and output is not None:
                        outputs.append(output)
                    batch_progress.increment("completed")
                    if not sanity:
                        step_log = results.metrics(True)[1]
                        if step_log:
                            trainer._log_to_loggers(step_log, step=trainer._eval_step_counter(stage, dl_idx))
                    results.batch = None
                    batch_idx += 1
                all_outputs.append(outputs)
                # per-dataloader epoch metrics (Lightning's _store_dataloader_outputs)
                metrics.set_on_step(False)
                logged_outputs.append(self._eval_epoch_metrics(sanity))
                metrics.set_on_step(True)
            metrics.set_on_step(False)
            results.dataloader_idx = None
            if collect:
                hooks.call_module(legacy_end, all_outputs if multiple else all_outputs[0])
            hooks.call(f"on_{prefix}_epoch_end")
            metrics.epoch_metrics()
            epoch_end_logged = self._eval_epoch_metrics(sanity)
            combined: dict[str, Tensor] = {}
            for out in logged_outputs:
                combined.update(out)
            combined.update(epoch_end_logged)
            for out in logged_outputs:
                out.update(epoch_end_logged)
            if not sanity:
                self.log_metrics(combined)
            hooks.call(f"on_{prefix}_end")
            metrics.reset_results(results)
            trainer._last_val_time = time.monotonic()
            train_hook = "on_test_model_train" if testing else "on_validation_model_train"
            from torchbolt.core.module import LightningModule

            if is_overridden(module, train_hook, LightningModule):
                self._modes = _ModuleModes()
                hooks.call_module(train_hook)
            else:
                self._modes.restore(module)
        metrics.activate(prev_results)
        metrics.on_step = prev_on_step
        trainer.state.stage = prev_stage
        return [{k: (v.item() if isinstance(v, Tensor) else v) for k, v in out.items()} for out in logged_outputs]

    def _eval_epoch_metrics(self, sanity: bool) -> dict[str, Tensor]:
        metrics = self.trainer._metrics
        if sanity:
            return {}
        return dict(metrics.epoch_metrics()[1])

    def log_metrics(self, log: dict[str, Tensor], step: int | None = None) -> None:
        """Send metrics to the loggers (if any) at the current step."""
        if log:
            self.trainer._log_to_loggers(log, step)

    # ================================================================================================
    # predict
    # ================================================================================================
    def predict(self, return_predictions: bool) -> list[Any] | None:
        """Run predict_step over every predict dataloader (reference §2.4)."""
        trainer = self.trainer
        hooks = trainer._hooks
        module = self.module
        trainer._metrics.activate(None)
        loaders = self.eval_loaders["predict"]
        max_batches = self.num_eval_batches["predict"]
        progress = trainer._progress.predict_batch
        progress.reset_current()
        if sum(max_batches) == 0:
            return None
        multiple = len(loaders) > 1
        all_predictions: list[list[Any]] = []
        grad_ctx = torch.inference_mode() if trainer.inference_mode else torch.no_grad()
        # Prediction writers get each batch's sample indices: record them from the batch samplers.
        from torchbolt.callbacks.prediction_writer import (
            BasePredictionWriter,
            record_batch_indices,
            uses_prediction_writer,
        )

        recorders = [record_batch_indices(lo) for lo in loaders] if uses_prediction_writer(trainer.callbacks) else []
        self.current_batch_indices: list[int] | None = None
        self.epoch_batch_indices: list[list[list[int]]] = [[] for _ in loaders]
        # an epoch-interval writer receives all predictions even with return_predictions=False (as Lightning)
        keep_predictions = return_predictions or any(
            isinstance(cb, BasePredictionWriter) and cb.interval.on_epoch for cb in trainer.callbacks)
        first_iter = iter(loaders[0]) if max_batches[0] else None
        with grad_ctx:
            self._modes.capture(module)
            hooks.call_module("on_predict_model_eval")
            hooks.call("on_predict_start")
            hooks.call("on_predict_epoch_start")
            precision = trainer._precision
            for dl_idx, loader in enumerate(loaders):
                predictions: list[Any] = []
                limit = max_batches[dl_idx]
                iterator = first_iter if dl_idx == 0 else (iter(loader) if limit else None)
                batch_idx = 0
                log_idx = dl_idx if multiple else None
                while iterator is not None and batch_idx < limit:
                    try:
                        batch = fetch(iterator, hooks._profiler, PREDICT_NEXT_ACTION)
                    except StopIteration:
                        break
                    recorder = recorders[dl_idx] if recorders else None
                    if recorder is not None and batch_idx < len(recorder.seen):
                        self.current_batch_indices = recorder.seen[batch_idx]
                        self.epoch_batch_indices[dl_idx].append(self.current_batch_indices)
                    batch = self.transfer(batch, dl_idx)
                    progress.increment("ready")
                    hook_args = (batch, batch_idx) if log_idx is None else (batch, batch_idx, log_idx)
                    hooks.call("on_predict_batch_start", *hook_args)
                    progress.increment("started")
                    args = self.step_args("predict_step", batch, batch_idx, log_idx)
                    with precision.forward_context():
                        output = hooks.call_module("predict_step", *args)
                    progress.increment("processed")
                    hooks.call("on_predict_batch_end", output, *hook_args)
                    progress.increment("completed")
                    if keep_predictions:
                        predictions.append(output)
                    batch_idx += 1
                all_predictions.append(predictions)
            self.predictions = all_predictions if multiple else (all_predictions[0] if all_predictions else [])
            hooks.call("on_predict_epoch_end")
            hooks.call("on_predict_end")
            self._modes.restore(module)
        if not return_predictions:
            return None
        return self.predictions


def _split_training_output(out: Any) -> tuple[Tensor | None, dict[str, Any]]:
    """(loss, extra outputs) from what training_step returned under automatic optimization."""
    if out is None:
        return None, {}
    if isinstance(out, Tensor):
        return out, {}
    if isinstance(out, dict):
        loss = out.get("loss")
        if loss is None:
            raise MisconfigurationException(
                "In automatic_optimization, when `training_step` returns a dict, the 'loss' key needs to be present "
                f"(keys: {sorted(out)})."
            )
        return loss, {k: v for k, v in out.items() if k != "loss"}
    raise MisconfigurationException(
        "In automatic optimization, `training_step` must return a Tensor, a dict with a 'loss' key, or None (where the "
        f"step will be skipped); got {type(out).__name__}."
    )


def estimated_stepping_batches(trainer: Trainer) -> int | float:
    """How many optimizer steps fit will take (for schedulers like OneCycleLR)."""
    if trainer.max_epochs == -1:
        return _INF if trainer.max_steps == -1 else trainer.max_steps
    loop = trainer._loop
    if loop.train_loader is None:
        loop.setup_train_data()
    total = loop.num_training_batches
    if total == _INF:
        return trainer.max_steps
    steps = math.ceil(total / trainer.accumulate_grad_batches) * max(trainer.max_epochs, 1)
    return min(steps, trainer.max_steps) if trainer.max_steps != -1 else steps

