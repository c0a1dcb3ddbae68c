"""`Checkpoint`: the base class of callbacks that save checkpoints (the Trainer lists them last)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.trainer.trainer import Trainer


class Checkpoint(Callback):
    """Marker base class: `trainer.checkpoint_callbacks` are the callbacks deriving from it."""


# --------------------------------------------------------------------------------------------------
# Reading the Trainer's run state the way checkpoint callbacks need it (shared by the callbacks here).
# --------------------------------------------------------------------------------------------------
def is_fitting(trainer: Trainer) -> bool:
    """True while `trainer.fit` runs (and not in validate/test/predict)."""
    state = getattr(trainer, "state", None)
    fn = getattr(state, "fn", None)
    return getattr(fn, "value", fn) in ("fit", "fitting")


def num_val_batches(trainer: Trainer) -> float:
    """Total validation batches per run across dataloaders (0 when validation is off)."""
    value: Any = getattr(trainer, "num_val_batches", 0)
    if isinstance(value, (list, tuple)):
        return float(sum(value))
    return float(value or 0)


def validation_has_run(trainer: Trainer) -> bool:
    """Whether the fit loop has completed at least one validation run (outside the sanity check)."""
    flag = getattr(trainer, "validation_has_run", None)
    if flag is not None:
        return bool(flag)
    loop = getattr(getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None), "val_loop", None)
    return bool(getattr(loop, "_has_run", False))


def checks_on_train_epoch_end(trainer: Trainer) -> bool:
    """Lightning's default for monitoring callbacks: act at the training epoch's end when validation runs
    exactly once per epoch at its end (or not at all); otherwise act after each validation."""
    if getattr(trainer, "_val_check_time_interval", None) is not None:
        return False
    if getattr(trainer, "check_val_every_n_epoch", 1) != 1:
        return False
    if num_val_batches(trainer) == 0:
        return True
    return getattr(trainer, "val_check_interval", 1.0) == 1.0
