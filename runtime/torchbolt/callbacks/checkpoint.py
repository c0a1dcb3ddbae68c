"""`Checkpoint`: the base class of callbacks that save checkpoints (the Trainer lists them last)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    return trainer.state.fn == "fit"


def num_val_batches(trainer: Trainer) -> float:
    """Total validation batches per run across dataloaders (0 when validation is off)."""
    return float(sum(trainer.num_val_batches))


def validation_has_run(trainer: Trainer) -> bool:
    """Whether the current (or last) validation run inside fit processed a batch (the sanity check does not
    count)."""
    return trainer.validation_has_run


def checks_on_train_epoch_end(trainer: Trainer) -> bool:
    """Lightning's default for monitoring callbacks: act at the training epoch's end when validation runs
    exactly once per epoch at its end (or not at all); otherwise act after each validation."""
    if trainer.validation_time_interval is not None:
        return False
    if trainer.check_val_every_n_epoch != 1:
        return False
    if num_val_batches(trainer) == 0:
        return True
    return trainer.val_check_interval == 1.0
