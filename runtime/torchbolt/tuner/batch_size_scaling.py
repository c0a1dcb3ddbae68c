"""Batch-size search: grow the batch size (doubling, or by binary search) while a few training steps
still fit in memory."""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

import torch

from torchbolt.tuner.attributes import check_batch_arg, lightning_getattr, lightning_setattr
from torchbolt.tuner.trial import reset_data, restoring, run_fit_steps

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


def _dataset_length(trainer: Trainer) -> int | None:
    """Length of the training dataset, requesting the dataloader with the current batch size when needed."""
    reset_data(trainer)
    trainer._loops.sources.setup_train()
    loader = trainer._loops.sources.train_loader
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None  # type: ignore[arg-type]
    except TypeError:
        return None


def _adjust(trainer: Trainer, name: str, factor: float = 1.0, value: int | None = None, desc: str | None = None,
            max_val: int = 8192) -> tuple[int, bool]:
    """Set the batch size to `value` or `factor` times the current one (capped at max_val and not beyond the
    dataset); returns (new size, whether it changed)."""
    model = trainer.lightning_module
    current = lightning_getattr(model, name)
    length = _dataset_length(trainer)
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


def _trial(trainer: Trainer, steps: int) -> None:
    reset_data(trainer)
    trainer._progress.load_state_dict(trainer.__dict__["_bs_progress"])
    run_fit_steps(trainer, steps, [], limit_val_batches=steps)


def scale_batch_size(trainer: Trainer, mode: str = "power", steps_per_trial: int = 3, init_val: int = 2,
                     max_trials: int = 25, batch_arg_name: str = "batch_size", margin: float = 0.05,
                     max_val: int = 8192) -> int | None:
    """Search the batch size inside a fit (from `BatchSizeFinder.on_fit_start`) and leave the best one set
    on the module (or DataModule); weights, optimizer and progress are restored afterwards."""
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
    import copy

    with restoring(trainer):
        trainer.limit_train_batches = 1.0
        trainer.__dict__["_bs_progress"] = copy.deepcopy(trainer._progress.state_dict())
        try:
            size, _ = _adjust(trainer, batch_arg_name, value=init_val)
            if mode == "power":
                size = _power(trainer, size, batch_arg_name, max_trials, steps_per_trial, max_val)
            else:
                size = _binsearch(trainer, size, batch_arg_name, max_trials, steps_per_trial, margin, max_val)
        finally:
            trainer.__dict__.pop("_bs_progress", None)
        _free_memory()
        log.info("Finished batch size finder, will continue with full run using batch size %d", size)
    if bar is not None:
        bar.enable()
    return size


def _on_cpu_note(trainer: Trainer) -> None:
    module = trainer.lightning_module
    if module is not None and module.device.type == "cpu":
        log.info("The batch size search ran on CPU, where running out of memory shows as an allocation failure; "
                 "it stopped there.")


def _power(trainer: Trainer, size: int, name: str, max_trials: int, steps: int, max_val: int) -> int:
    any_success = False
    last_ok = size
    for i in range(max_trials):
        _free_memory()
        if size >= max_val:
            log.info("Reached the maximum batch size limit of %d. Stopping search.", max_val)
            break
        try:
            _trial(trainer, steps)
        except (RuntimeError, MemoryError) as exc:
            if not is_oom_error(exc):
                raise
            _on_cpu_note(trainer)
            _free_memory()
            size, _ = _adjust(trainer, name, factor=0.5, desc="failed")
            if any_success:
                break
            continue
        last_ok = size
        if i + 1 >= max_trials:
            size = last_ok
            break
        size, changed = _adjust(trainer, name, factor=2.0, desc="succeeded")
        if not changed:
            break
        any_success = True
    return size


def _binsearch(trainer: Trainer, size: int, name: str, max_trials: int, steps: int, margin: float,
               max_val: int) -> int:
    low, high = 1, None
    count = 0
    last_ok = size
    while True:
        _free_memory()
        if size >= max_val:
            log.info("Reached the maximum batch size limit of %d. Stopping search.", max_val)
            break
        try:
            _trial(trainer, steps)
        except (RuntimeError, MemoryError) as exc:
            if not is_oom_error(exc):
                raise
            _on_cpu_note(trainer)
            _free_memory()
            high = size
            size, _ = _adjust(trainer, name, value=(high + low) // 2, desc="failed")
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
            size, changed = _adjust(trainer, name, value=(high + low) // 2, desc="succeeded", max_val=max_val)
        else:
            size, changed = _adjust(trainer, name, factor=2.0, desc="succeeded", max_val=max_val)
        if not changed:
            break
    if margin > 0:
        reduced = max(1, int(size * (1 - margin)))
        if reduced != size:
            log.info("Applying margin of %.1f%%, reducing batch size from %d to %d", margin * 100, size, reduced)
            size = reduced
            lightning_setattr(trainer.lightning_module, name, size)
    return size


