"""Exact resume: a run restarted from a checkpoint (end of an epoch, or the middle of one right after a step
checkpoint) ends with bit-for-bit the same weights, optimizer and scheduler state, and logged metrics as
an uninterrupted run. CPU, deterministic, shuffled DataLoader, dropout (so RNG state matters)."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
import torch
from ckpt_models import assert_state_equal, read_metrics_csv, torchbolt_classes, trainer_kwargs, weights
from torchbolt import Trainer, seed_everything
from torchbolt.callbacks import ModelCheckpoint
from torchbolt.checkpoint.io import safe_load
from torchbolt.loggers import CSVLogger

MAX_EPOCHS = 3
STEPS_PER_EPOCH = 6  # 48 samples / batch 8


def _run(root: pathlib.Path, version: str, seed: int, ckpt_path: str | None = None,
         half_epoch_validation: bool = False) -> dict[str, Any]:
    seed_everything(seed)
    model_cls, data_cls = torchbolt_classes()
    model, data = model_cls(), data_cls()
    if half_epoch_validation:
        # validation twice per epoch; the monitoring checkpoint is written from on_validation_end
        extra: dict[str, Any] = {"val_check_interval": 0.5}
        callbacks = [ModelCheckpoint(dirpath=root / version / "vals", filename="{step}", monitor="val_loss",
                                     save_top_k=-1)]
    else:
        extra = {}
        callbacks = [
            ModelCheckpoint(dirpath=root / version / "epochs", filename="{epoch}", save_top_k=-1),
            ModelCheckpoint(dirpath=root / version / "steps", filename="{step}", every_n_train_steps=1,
                            save_top_k=-1),
        ]
    logger = CSVLogger(root, name="logs", version=version, flush_logs_every_n_steps=1)
    trainer = Trainer(**trainer_kwargs(root, max_epochs=MAX_EPOCHS, logger=logger, callbacks=callbacks, **extra))
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    optimizer = trainer.optimizers[0]
    optimizer = getattr(optimizer, "optimizer", optimizer)
    return {
        "weights": weights(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": trainer.lr_scheduler_configs[0].scheduler.state_dict(),
        "rows": read_metrics_csv(os.path.join(logger.log_dir, "metrics.csv")),
        "global_step": trainer.global_step,
        "epoch": trainer.current_epoch,
        "rng_after": torch.rand(4),
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("resume")
    return root, _run(root, "full", seed=0)


def _assert_same_end(resumed: dict[str, Any], full: dict[str, Any]) -> None:
    assert resumed["global_step"] == full["global_step"] == MAX_EPOCHS * STEPS_PER_EPOCH
    assert resumed["epoch"] == full["epoch"]
    assert_state_equal(resumed["weights"], full["weights"], "weights")
    assert_state_equal(resumed["optimizer"], full["optimizer"], "optimizer")
    assert_state_equal(resumed["scheduler"], full["scheduler"], "scheduler")
    rows = resumed["rows"]
    assert rows, "the resumed run logged nothing"
    # every row the resumed run logged is exactly the corresponding row of the uninterrupted run
    assert rows == full["rows"][-len(rows):]


def test_resume_from_end_of_epoch_is_bitwise(uninterrupted: tuple[pathlib.Path, dict[str, Any]]) -> None:
    root, full = uninterrupted
    ckpt = root / "full" / "epochs" / "epoch=0.ckpt"
    assert safe_load(ckpt)["global_step"] == STEPS_PER_EPOCH
    resumed = _run(root, "from_epoch", seed=999, ckpt_path=str(ckpt))
    _assert_same_end(resumed, full)
    # it logged the remaining two epochs, no more (one row per step plus epoch/validation rows)
    assert {float(r["epoch"]) for r in resumed["rows"]} == {1.0, 2.0}


@pytest.mark.parametrize("step", [9, 6, 13])
def test_resume_from_middle_of_epoch_is_bitwise(uninterrupted: tuple[pathlib.Path, dict[str, Any]], step: int) -> None:
    root, full = uninterrupted
    ckpt = root / "full" / "steps" / f"step={step}.ckpt"
    assert safe_load(ckpt)["global_step"] == step
    resumed = _run(root, f"from_step_{step}", seed=4321, ckpt_path=str(ckpt))
    _assert_same_end(resumed, full)
    first_step = min(int(float(r["step"])) for r in resumed["rows"])
    assert first_step >= step - 1


def test_resume_restores_rng_for_what_follows(uninterrupted: tuple[pathlib.Path, dict[str, Any]]) -> None:
    root, full = uninterrupted
    resumed = _run(root, "rng", seed=77, ckpt_path=str(root / "full" / "steps" / "step=9.ckpt"))
    assert torch.equal(resumed["rng_after"], full["rng_after"])


@pytest.fixture(scope="module")
def uninterrupted_half_epoch_val(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("resume_val")
    return root, _run(root, "full", seed=0, half_epoch_validation=True)


@pytest.mark.parametrize("step", [3, 6, 9, 15])
def test_resume_from_checkpoint_written_during_validation(
    uninterrupted_half_epoch_val: tuple[pathlib.Path, dict[str, Any]], step: int
) -> None:
    """val_check_interval=0.5: checkpoints come from on_validation_end, mid-epoch (3, 9, 15) and after the
    epoch's last batch (6)."""
    root, full = uninterrupted_half_epoch_val
    ckpt = root / "full" / "vals" / f"step={step}.ckpt"
    assert safe_load(ckpt)["global_step"] == step
    resumed = _run(root, f"from_val_{step}", seed=31, ckpt_path=str(ckpt), half_epoch_validation=True)
    _assert_same_end(resumed, full)
