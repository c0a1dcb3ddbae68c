"""Run a few training steps inside a fit and put everything back afterwards (the tuners' trial runs)."""

from __future__ import annotations

import copy
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchbolt.trainer.trainer import Trainer


@contextmanager
def restoring(trainer: Trainer) -> Generator[None, None, None]:
    """Snapshot weights, optimizer and scheduler states, loop progress and the Trainer's limits, callbacks
    and loggers; restore them on exit (what Lightning does with a temporary checkpoint)."""
    module = trainer.lightning_module
    assert module is not None
    weights = copy.deepcopy(module.state_dict())
    optimizers = [copy.deepcopy(opt.state_dict()) for opt in trainer.optimizers]
    schedulers = list(trainer.lr_scheduler_configs)
    scheduler_states = [copy.deepcopy(c.scheduler.state_dict()) for c in schedulers]
    progress = copy.deepcopy(trainer._progress.state_dict())
    saved = {name: getattr(trainer, name) for name in (
        "callbacks", "loggers", "max_steps", "limit_train_batches", "limit_val_batches", "limit_test_batches",
        "limit_predict_batches", "num_sanity_val_steps")}
    stage = trainer.state.stage
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(trainer, name, value)
        module.load_state_dict(weights)
        for opt, state in zip(trainer.optimizers, optimizers, strict=True):
            opt.load_state_dict(state)
        trainer.lr_scheduler_configs[:] = schedulers
        for config, state in zip(schedulers, scheduler_states, strict=True):
            config.scheduler.load_state_dict(state)
        trainer._progress.load_state_dict(progress)
        trainer.should_stop = False
        trainer.state.stage = stage
        reset_data(trainer)
        rebind(trainer)


def reset_data(trainer: Trainer) -> None:
    """Forget the loaded dataloaders so the next run requests them again (after a batch-size change)."""
    sources = trainer._loops.sources
    sources.train_loader = sources.train_source = None
    sources.val_loaders = sources.val_source = None
    trainer._loops.fit.forget_iterator()


def rebind(trainer: Trainer) -> None:
    """Bind the hooks to `trainer.callbacks` again and re-decide the step plan (which reads the hooks)."""
    from torchbolt.loops import build_step_plan

    module = trainer.lightning_module
    assert module is not None
    hooks = trainer._hooks
    hooks.bind(module, trainer.datamodule, trainer.callbacks, trainer._device.type != "cpu")
    trainer._loops.set_plan(build_step_plan(module, hooks, trainer._precision, len(trainer.optimizers)))


def run_fit_steps(trainer: Trainer, steps: int, callbacks: Sequence[Any], limit_val_batches: Any = None) -> None:
    """Train `steps` more optimizer steps with only `callbacks` and no loggers (call inside `restoring`)."""
    from torchbolt.loggers.logger import DummyLogger

    trainer.callbacks = list(callbacks)
    trainer.loggers = [DummyLogger()] if trainer.loggers else []
    trainer.max_steps = trainer.global_step + steps
    trainer.num_sanity_val_steps = 0
    if limit_val_batches is not None:
        trainer.limit_val_batches = limit_val_batches
    trainer.should_stop = False
    rebind(trainer)
    trainer._loops.fit.run()
