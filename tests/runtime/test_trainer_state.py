"""Explicit run state: TrainerState, progress counters, and the checkpoint `loops` entry in Lightning's format."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from _tb_helpers import Tiny, loader, trainer
from torchbolt.trainer.state import LoopState, RunningStage, TrainerFn, TrainerStatus


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_enums_compare_with_their_strings() -> None:
    assert TrainerFn.FITTING == "fit" and RunningStage.SANITY_CHECKING == "sanity_check"
    assert TrainerStatus.FINISHED.stopped and not TrainerStatus.RUNNING.stopped
    assert RunningStage.VALIDATING.evaluating and not RunningStage.TRAINING.evaluating


def test_loops_state_dict_counts_like_lightning_after_two_epochs() -> None:
    t = trainer(max_epochs=2, num_sanity_val_steps=2)
    t.fit(Tiny(), loader(32, 8), loader(16, 8))
    loops = t.loops_state_dict()
    fit = loops["fit_loop"]
    assert fit["epoch_loop.state_dict"] == {"_batches_that_stepped": 8}
    assert fit["epoch_loop.batch_progress"]["total"] == {"ready": 8, "started": 8, "processed": 8, "completed": 8}
    assert fit["epoch_loop.batch_progress"]["current"]["completed"] == 4
    assert fit["epoch_loop.batch_progress"]["is_last_batch"] is True
    optim = fit["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]
    assert optim["step"] == {"total": {"ready": 8, "completed": 8}, "current": {"ready": 4, "completed": 4}}
    assert optim["zero_grad"]["total"] == {"ready": 8, "started": 8, "completed": 8}
    assert fit["epoch_progress"]["total"]["completed"] == 2 and fit["epoch_progress"]["current"]["processed"] == 2
    assert fit["epoch_loop.val_loop.batch_progress"]["total"]["completed"] == 2  # reset per validation run
    assert set(loops) == {"fit_loop", "validate_loop", "test_loop", "predict_loop"}
    assert "is_last_batch" not in loops["predict_loop"]["batch_progress"]


def test_loops_state_dict_has_lightnings_structure() -> None:
    lightning = pytest.importorskip("lightning.pytorch")

    class L(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lt = lightning.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                               enable_model_summary=False)
        lt.fit(L(), loader(16, 8))
    theirs = lt._checkpoint_connector._get_loops_state_dict()
    t = trainer(max_epochs=1)
    t.fit(Tiny(), loader(16, 8))
    ours = t.loops_state_dict()
    ours["fit_loop"]["state_dict"] = {}  # torchbolt's own resume data lives here; Lightning ignores it
    assert _shape(ours) == _shape(theirs)
    assert ours == theirs


def test_load_state_dict_round_trip_and_resume_position() -> None:
    t = trainer(max_epochs=1)
    t.fit(Tiny(), loader(16, 8))
    state = t.loops_state_dict()
    fresh = LoopState()
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    other = trainer(max_epochs=2)
    other.load_loops_state_dict(state, "fit")
    assert other.current_epoch == 1 and other.global_step == 2
    assert other.loop_state.resume_point["epoch_finished"] is True


def test_trainer_flags_follow_the_running_stage() -> None:
    seen: dict[str, tuple[bool, ...]] = {}

    class Flags(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            t = self.trainer
            seen["train"] = (t.training, t.validating, t.sanity_checking, t.state.fn == "fit")
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            t = self.trainer
            key = "sanity" if t.sanity_checking else ("validate" if t.state.fn == "validate" else "val")
            seen[key] = (t.training, t.validating, t.sanity_checking, t.evaluating)

        def test_step(self, batch: Any, batch_idx: int) -> None:
            seen["test"] = (self.trainer.testing, self.trainer.evaluating)

        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            seen["predict"] = (self.trainer.predicting,)
            return None

    t = trainer(num_sanity_val_steps=1)
    model = Flags()
    t.fit(model, loader(8, 8), loader(8, 8))
    t.validate(model, loader(8, 8), verbose=False)
    t.test(model, loader(8, 8), verbose=False)
    t.predict(model, loader(8, 8))
    assert seen == {"train": (True, False, False, True), "sanity": (False, False, True, True),
                    "val": (False, True, False, True), "validate": (False, True, False, True),
                    "test": (True, True), "predict": (True,)}
    assert not t.training and t.state.status == "finished"


def test_fit_loop_view_uses_lightnings_names() -> None:
    t = trainer(max_epochs=2)
    t.fit(Tiny(), loader(16, 8))
    view = t.fit_loop
    assert view.epoch_progress.current.completed == 2 and view.max_epochs == 2
    assert view.epoch_loop.global_step == 4 and view.epoch_loop._batches_that_stepped == 4
    assert view.epoch_loop.batch_progress.total.completed == 4 and view.total_batch_idx == 3
    assert view.state_dict()["epoch_loop.state_dict"] == {"_batches_that_stepped": 4}
