"""Batch-size search: grow the batch size (doubling, or by binary search) while a few training steps (or,
from validate / test / predict, a few batches of that run) still fit in memory."""

from __future__ import annotations

import copy
import gc
import logging
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.loggers.logger import DummyLogger
from torchbolt.trainer.state import RunningStage
from torchbolt.tuner.attributes import check_batch_arg, lightning_getattr, lightning_setattr
from torchbolt.tuner.trial import rebind, reset_data, restoring, run_fit_steps

if TYPE_CHECKING:
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

_OOM_MESSAGES = ("CUDA out of memory.", "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED.", "CUDA error: out of memory",
                 "DefaultCPUAllocator: can't allocate memory", "MPS backend out of memory")


def is_oom_error(exc: BaseException) -> bool:
    """Whether `exc` says the device (CUDA, MPS) or the CPU allocator ran out of memory."""
    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and len(exc.args) == 1 and any(m in str(exc.args[0]) for m in _OOM_MESSAGES)


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


#: per entry point other than fit: the dataloaders' key, the loop's stage and the limit a trial sets
_EVAL_RUNS = {
    "validate": (RunningStage.VALIDATING, "limit_val_batches"),
    "test": (RunningStage.TESTING, "limit_test_batches"),
    "predict": (RunningStage.PREDICTING, "limit_predict_batches"),
}


class _Trials:
    """The trial runs of one search: `steps` training steps inside fit, or `steps` batches of the
    validate / test / predict run the search was started from (`key`)."""

    def __init__(self, trainer: Trainer, steps: int) -> None:
        self.trainer = trainer
        self.steps = steps
        fn = trainer.state.fn
        self.key: str | None = None if fn is None or fn.value == "fit" else fn.value
        self.progress = copy.deepcopy(trainer._progress.state_dict())

    def prepare(self) -> None:
        """Settings every trial shares (put back by `restoring`)."""
        trainer = self.trainer
        if self.key is None:
            trainer.limit_train_batches = 1.0
            return
        trainer.callbacks = []
        trainer.loggers = [DummyLogger()] if trainer.loggers else []
        setattr(trainer, _EVAL_RUNS[self.key][1], self.steps)
        rebind(trainer)

    def loaders(self) -> list[Any]:
        """The dataloaders requested again with the current batch size."""
        trainer = self.trainer
        sources = trainer._loops.sources
        reset_data(trainer)
        if self.key is None:
            sources.setup_train()
            return [sources.train_loader]
        return sources.setup_eval(self.key)

    def dataset_length(self) -> int | None:
        """The dataset's length (the evaluation datasets' total), None when none has one."""
        lengths = []
        for loader in self.loaders():
            try:
                lengths.append(len(loader.dataset))
            except (AttributeError, TypeError):
                continue
        if not lengths:
            return None
        return max(lengths) if self.key is None else sum(lengths)

    def run(self) -> None:
        """One trial from the same starting progress."""
        trainer = self.trainer
        trainer._progress.load_state_dict(copy.deepcopy(self.progress))
        if self.key is None:
            reset_data(trainer)
            run_fit_steps(trainer, self.steps, [], limit_val_batches=self.steps)
            return
        self.loaders()
        loops = trainer._loops
        if self.key == "predict":
            loops.predict.run(return_predictions=False)
        else:
            loops.evaluation.run(_EVAL_RUNS[self.key][0], in_fit=False)

    def finish(self) -> None:
        """After `restoring`: the run goes on with dataloaders of the size found."""
        if self.key is not None:
            self.loaders()


def _adjust(trials: _Trials, name: str, factor: float = 1.0, value: int | None = None, desc: str | None = None,
            max_val: int = 8192) -> tuple[int, bool]:
    """Set the batch size to `value` or `factor` times the current one (capped at max_val and not beyond the
    dataset); returns (new size, whether it changed)."""
    model = trials.trainer.lightning_module
    current = lightning_getattr(model, name)
    length = trials.dataset_length()
    if length is not None and current >= length:
        log.info("The batch size %d is greater or equal than the length of your dataset: %d.", current, length)
        return current, False
    new = value if value is not None else int(current * factor)
    if new > max_val:
        if desc:
            log.info("Batch size %d exceeds max_val limit %d, capping at %d", new, max_val, max_val)
        new = max_val
    if desc:
        log.info("Batch size %d %s, trying batch size %d", current, desc, new)
    lightning_setattr(model, name, new)
    return new, new != current


def scale_batch_size(trainer: Trainer, mode: str = "power", steps_per_trial: int = 3, init_val: int = 2,
                     max_trials: int = 25, batch_arg_name: str = "batch_size", margin: float = 0.05,
                     max_val: int = 8192) -> int | None:
    """Search the batch size from inside a run (`BatchSizeFinder` at the start of fit, validate, test or
    predict) and leave the best one set on the module (or DataModule); trials are a few training steps, or
    a few batches of the evaluation or prediction run. Weights, optimizer, progress, callbacks, loggers
    and limits are restored afterwards."""
    if mode not in ("power", "binsearch"):
        raise ValueError(f"scale_batch_size(mode={mode!r}) must be 'power' or 'binsearch'.")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"`margin` should be between 0 and 1. Found margin={margin!r}")
    if trainer.fast_dev_run:
        log.warning("Skipping batch size scaler since `fast_dev_run` is enabled.")
        return None
    model = trainer.lightning_module
    check_batch_arg(model, batch_arg_name)
    bar = trainer.progress_bar_callback
    if bar is not None:
        bar.disable()
    trials = _Trials(trainer, steps_per_trial)
    with restoring(trainer):
        trials.prepare()
        size, _ = _adjust(trials, batch_arg_name, value=init_val)
        if mode == "power":
            size = _power(trials, size, batch_arg_name, max_trials, max_val)
        else:
            size = _binsearch(trials, size, batch_arg_name, max_trials, margin, max_val)
        _free_memory()
        log.info("Finished batch size finder, will continue with full run using batch size %d", size)
    trials.finish()
    if bar is not None:
        bar.enable()
    return size


def _on_cpu_note(trainer: Trainer) -> None:
    module = trainer.lightning_module
    if module is not None and module.device.type == "cpu":
        log.info("The batch size search ran on CPU, where running out of memory shows as an allocation failure; "
                 "it stopped there.")


def _power(trials: _Trials, size: int, name: str, max_trials: int, max_val: int) -> int:
    any_success = False
    last_ok = size
    for i in range(max_trials):
        _free_memory()
        if size >= max_val:
            log.info("Reached the maximum batch size limit of %d. Stopping search.", max_val)
            break
        try:
            trials.run()
        except (RuntimeError, MemoryError) as exc:
            if not is_oom_error(exc):
                raise
            _on_cpu_note(trials.trainer)
            _free_memory()
            size, _ = _adjust(trials, name, factor=0.5, desc="failed")
            if any_success:
                break
            continue
        last_ok = size
        if i + 1 >= max_trials:
            size = last_ok
            break
        size, changed = _adjust(trials, name, factor=2.0, desc="succeeded")
        if not changed:
            break
        any_success = True
    return size


def _binsearch(trials: _Trials, size: int, name: str, max_trials: int, margin: float, max_val: int) -> int:
    low, high = 1, None
    count = 0
    last_ok = size
    while True:
        _free_memory()
        if size >= max_val:
            log.info("Reached the maximum batch size limit of %d. Stopping search.", max_val)
            break
        try:
            trials.run()
        except (RuntimeError, MemoryError) as exc:
            if not is_oom_error(exc):
                raise
            _on_cpu_note(trials.trainer)
            _free_memory()
            high = size
            size, _ = _adjust(trials, name, value=(high + low) // 2, desc="failed")
            if high - low <= 1:
                break
            continue
        last_ok = size
        count += 1
        if count >= max_trials:
            size = last_ok
            break
        low = size
        if high:
            if high - low <= 1:
                break
            size, changed = _adjust(trials, name, value=(high + low) // 2, desc="succeeded", max_val=max_val)
        else:
            size, changed = _adjust(trials, name, factor=2.0, desc="succeeded", max_val=max_val)
        if not changed:
            break
    if margin > 0:
        reduced = max(1, int(size * (1 - margin)))
        if reduced != size:
            log.info("Applying margin of %.1f%%, reducing batch size from %d to %d", margin * 100, size, reduced)
            size = reduced
            lightning_setattr(trials.trainer.lightning_module, name, size)
    return size


