"""Checkpoints cross over with the real Lightning 2.6.6, both directions: load_from_checkpoint and
fit(ckpt_path=...) continue from the other runtime's file."""

from __future__ import annotations

import pathlib
import warnings
from typing import Any

import pytest
import torch
import torchbolt
from ckpt_models import assert_state_equal, make_classes, torchbolt_classes, trainer_kwargs, weights
from torchbolt.checkpoint.io import safe_load

pytestmark = pytest.mark.lightning
lpl = pytest.importorskip("lightning.pytorch")

STEPS_PER_EPOCH = 6


def _fit(pl: Any, classes: tuple[type, type], root: pathlib.Path, max_epochs: int, ckpt_path: str | None = None,
         seed: int = 0) -> tuple[Any, Any]:
    model_cls, data_cls = classes
    pl.seed_everything(seed)
    model, data = model_cls(hidden=4, dropout=0.0), data_cls()
    kwargs = trainer_kwargs(root, max_epochs=max_epochs, logger=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(**kwargs)
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer, model


@pytest.fixture(scope="module")
def lightning_classes() -> tuple[type, type]:
    return make_classes(lpl)


def test_lightning_checkpoint_loads_in_torchbolt(tmp_path: pathlib.Path, lightning_classes: tuple[type, type]) -> None:
    ltrainer, lmodel = _fit(lpl, lightning_classes, tmp_path / "l", max_epochs=2)
    path = tmp_path / "lightning.ckpt"
    ltrainer.save_checkpoint(path)
    raw = safe_load(path)  # the safe loader accepts everything Lightning writes
    assert raw["pytorch-lightning_version"] == lpl.__version__

    model_cls, data_cls = torchbolt_classes()
    loaded = model_cls.load_from_checkpoint(path)
    assert loaded.hparams.hidden == 4 and loaded.hparams.dropout == 0.0
    assert_state_equal(weights(loaded), weights(lmodel), "weights")
    assert data_cls.load_from_checkpoint(path).hparams.batch_size == 8

    trainer, model = _fit(torchbolt, torchbolt_classes(), tmp_path / "t", max_epochs=3, ckpt_path=str(path), seed=5)
    assert trainer.current_epoch == 3 and trainer.global_step == 3 * STEPS_PER_EPOCH
    assert model.loaded_extra == {"epoch_seen": 2}
    # Lightning resuming its own file reaches the same point; torchbolt's continuation matches it exactly
    ltrainer2, lmodel2 = _fit(lpl, lightning_classes, tmp_path / "l2", max_epochs=3, ckpt_path=str(path), seed=5)
    assert ltrainer2.global_step == trainer.global_step
    assert_state_equal(weights(model), weights(lmodel2), "weights after continuing")


def test_torchbolt_checkpoint_loads_in_lightning(tmp_path: pathlib.Path, lightning_classes: tuple[type, type]) -> None:
    trainer, model = _fit(torchbolt, torchbolt_classes(), tmp_path / "t", max_epochs=2)
    path = tmp_path / "torchbolt.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # what Lightning's loader does by default on torch >= 2.6
    assert raw["global_step"] == 2 * STEPS_PER_EPOCH

    lmodel_cls, ldata_cls = lightning_classes
    lloaded = lmodel_cls.load_from_checkpoint(path)
    assert lloaded.hparams.hidden == 4
    assert_state_equal(weights(lloaded), weights(model), "weights")
    assert ldata_cls.load_from_checkpoint(path).hparams.n == 48

    ltrainer, lmodel = _fit(lpl, lightning_classes, tmp_path / "l", max_epochs=3, ckpt_path=str(path), seed=5)
    assert ltrainer.current_epoch == 3 and ltrainer.global_step == 3 * STEPS_PER_EPOCH
    # Lightning continues from torchbolt's file exactly as from its own file of the same run: the same
    # 2-epoch run in Lightning gives identical weights, and both continuations end identical
    ref_trainer, ref_model = _fit(lpl, lightning_classes, tmp_path / "ref", max_epochs=2)
    assert_state_equal(weights(ref_model), weights(model), "same run in both runtimes")
    ref_path = tmp_path / "lightning.ckpt"
    ref_trainer.save_checkpoint(ref_path)
    _, lmodel_ref = _fit(lpl, lightning_classes, tmp_path / "l2", max_epochs=3, ckpt_path=str(ref_path), seed=5)
    assert_state_equal(weights(lmodel), weights(lmodel_ref), "weights after continuing")
