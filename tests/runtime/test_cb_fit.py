"""The checkpoint and monitoring callbacks inside real fits. Where Lightning 2.6.6 is installed, the same
configuration runs on both runtimes and the files written / the stopping epoch must be the same."""

from __future__ import annotations

import os
import pathlib
import warnings
from datetime import timedelta
from typing import Any

import pytest
import torch
import torchbolt
from ckpt_models import make_classes, torchbolt_classes, trainer_kwargs
from torchbolt.callbacks import (
    EarlyStopping,
    GradientAccumulationScheduler,
    ModelCheckpoint,
    OnExceptionCheckpoint,
)
from torchbolt.checkpoint.io import safe_load


def _lightning() -> Any:
    return pytest.importorskip("lightning.pytorch")


def _fit(pl: Any, root: pathlib.Path, callbacks: list[Any], model_kwargs: dict[str, Any] | None = None,
         **trainer_overrides: Any) -> tuple[Any, Any]:
    model_cls, data_cls = make_classes(pl) if pl is not torchbolt else torchbolt_classes()
    pl.seed_everything(0)
    model = model_cls(**(model_kwargs or {}))
    kwargs = trainer_kwargs(root, logger=False, **trainer_overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(callbacks=callbacks, **kwargs)
        trainer.fit(model, datamodule=data_cls())
    return trainer, model


def _files(folder: pathlib.Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(
        os.path.relpath(os.path.join(dp, f), folder) for dp, _, files in os.walk(folder) for f in files
        if not f.startswith(".")
    )


# each case: ModelCheckpoint kwargs (dirpath added), Trainer overrides
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "default": ({}, {}),
    "top2_val_loss": ({"monitor": "val_loss", "save_top_k": 2, "filename": "{epoch}-{val_loss:.3f}"}, {}),
    "max_mode_last": ({"monitor": "val_loss", "mode": "max", "save_last": True}, {}),
    "all_steps": ({"every_n_train_steps": 4, "save_top_k": -1, "filename": "{step}"}, {}),
    "steps_monitor": ({"every_n_train_steps": 5, "monitor": "train_loss_step", "save_top_k": 2}, {}),
    "every_2_epochs": ({"every_n_epochs": 2, "save_top_k": -1}, {"max_epochs": 5}),
    "no_auto_name": ({"filename": "e{epoch:02d}_s{step}", "auto_insert_metric_name": False, "save_top_k": -1}, {}),
    "slash_names": ({"monitor": "val_loss", "filename": "run/{epoch}-{val_loss:.2f}"}, {}),
    "half_epoch_val": ({"monitor": "val_loss", "save_top_k": -1}, {"val_check_interval": 0.5}),
    "val_every_2": ({"monitor": "val_loss", "save_top_k": 1, "save_last": True},
                    {"check_val_every_n_epoch": 2, "max_epochs": 4}),
    "top0_last": ({"save_top_k": 0, "save_last": True}, {}),
    "weights_only": ({"save_weights_only": True}, {}),
    "on_train_epoch_end_false": ({"save_on_train_epoch_end": False, "monitor": "val_loss"}, {}),
}


@pytest.mark.lightning
@pytest.mark.parametrize("case", sorted(CASES))
def test_model_checkpoint_writes_what_lightning_writes(tmp_path: pathlib.Path, case: str) -> None:
    lpl = _lightning()
    mc_kwargs, overrides = CASES[case]
    ours = ModelCheckpoint(dirpath=tmp_path / "ours", **mc_kwargs)
    theirs = lpl.callbacks.ModelCheckpoint(dirpath=tmp_path / "theirs", **mc_kwargs)
    _fit(torchbolt, tmp_path / "t", [ours], **overrides)
    _fit(lpl, tmp_path / "l", [theirs], **overrides)
    assert _files(tmp_path / "ours") == _files(tmp_path / "theirs")
    assert os.path.relpath(ours.best_model_path or ".", tmp_path / "ours") == os.path.relpath(
        theirs.best_model_path or ".", tmp_path / "theirs")
    assert os.path.relpath(ours.last_model_path or ".", tmp_path / "ours") == os.path.relpath(
        theirs.last_model_path or ".", tmp_path / "theirs")
    if theirs.best_model_score is not None:
        assert float(ours.best_model_score) == pytest.approx(float(theirs.best_model_score), rel=1e-5)
    assert sorted(os.path.basename(p) for p in ours.best_k_models) == sorted(
        os.path.basename(p) for p in theirs.best_k_models)
    for name in _files(tmp_path / "ours"):
        ckpt = safe_load(tmp_path / "ours" / name)
        assert ("optimizer_states" in ckpt) is not mc_kwargs.get("save_weights_only", False)


def test_save_last_link_in_fit(tmp_path: pathlib.Path) -> None:
    mc = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_last="link", filename="{epoch}")
    _fit(torchbolt, tmp_path / "root", [mc])
    last = tmp_path / "last.ckpt"
    assert last.is_symlink()
    assert os.path.realpath(last) == os.path.realpath(mc._last_checkpoint_saved)
    assert safe_load(last)["global_step"] == safe_load(mc._last_checkpoint_saved)["global_step"]


def test_train_time_interval_in_fit(tmp_path: pathlib.Path) -> None:
    class Slow(torchbolt.Callback):
        def on_train_batch_end(self, *args: Any) -> None:
            import time

            time.sleep(0.02)

    mc = ModelCheckpoint(dirpath=tmp_path, train_time_interval=timedelta(milliseconds=1), save_top_k=-1,
                         filename="{step}")
    _fit(torchbolt, tmp_path / "root", [Slow(), mc], max_epochs=1)
    # every step takes longer than the interval, so every step saves
    assert _files(tmp_path) == sorted(f"step={s}.ckpt" for s in range(1, 7))


@pytest.mark.lightning
@pytest.mark.parametrize(
    "es_kwargs",
    [
        {"patience": 1},
        {"patience": 2, "min_delta": 0.05},
        {"patience": 10, "stopping_threshold": 1.2},
        {"patience": 10, "divergence_threshold": 0.01},
        {"patience": 1, "mode": "max"},
    ],
    ids=["patience", "min_delta", "stopping_threshold", "divergence", "max_mode"],
)
def test_early_stopping_stops_where_lightning_stops(tmp_path: pathlib.Path, es_kwargs: dict[str, Any]) -> None:
    lpl = _lightning()
    ours = EarlyStopping(monitor="val_loss", **es_kwargs)
    theirs = lpl.callbacks.EarlyStopping(monitor="val_loss", **es_kwargs)
    t_trainer, _ = _fit(torchbolt, tmp_path / "t", [ours], max_epochs=15, enable_checkpointing=False,
                        model_kwargs={"lr": 0.5})
    l_trainer, _ = _fit(lpl, tmp_path / "l", [theirs], max_epochs=15, enable_checkpointing=False,
                        model_kwargs={"lr": 0.5})
    assert t_trainer.current_epoch == l_trainer.current_epoch
    assert (ours.stopped_epoch, ours.wait_count) == (theirs.stopped_epoch, theirs.wait_count)
    assert ours.stopping_reason.value == theirs.stopping_reason.value
    assert float(ours.best_score) == pytest.approx(float(theirs.best_score), rel=1e-5)


def test_early_stopping_non_finite_in_fit(tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    model_cls, _ = torchbolt_classes()

    class Diverging(model_cls):  # type: ignore[misc,valid-type]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("val_loss", torch.tensor(float("nan")) if self.current_epoch == 1 else torch.tensor(1.0))

    es = EarlyStopping(monitor="val_loss", patience=5)
    _, data_cls = torchbolt_classes()
    trainer = torchbolt.Trainer(callbacks=[es], **trainer_kwargs(tmp_path, max_epochs=6, logger=False,
                                                                 enable_checkpointing=False))
    with caplog.at_level("INFO", logger="torchbolt.callbacks.early_stopping"):
        trainer.fit(Diverging(), datamodule=data_cls())
    assert trainer.current_epoch == 2 and es.stopped_epoch == 1
    assert es.stopping_reason.name == "NON_FINITE_METRIC"
    assert "is not finite" in caplog.text
    # the reason is printed for the user, not only logged
    assert "EarlyStopping stopped the run at epoch 1: Monitored metric val_loss = nan is not finite" in (
        capsys.readouterr().out)


def test_early_stopping_strict_error_in_fit(tmp_path: pathlib.Path) -> None:
    es = EarlyStopping(monitor="val_acc")
    with pytest.raises(RuntimeError, match=r"`val_acc` which is not available.*`train_loss`"):
        _fit(torchbolt, tmp_path, [es], enable_checkpointing=False)


def test_gradient_accumulation_scheduler_in_fit(tmp_path: pathlib.Path) -> None:
    seen: list[tuple[int, int]] = []

    class Watch(torchbolt.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            seen.append((trainer.current_epoch, trainer.global_step))

    _fit(torchbolt, tmp_path, [GradientAccumulationScheduler({1: 2, 2: 3}), Watch()], enable_checkpointing=False)
    # 6 batches per epoch: 6 steps, then 3 (accumulating 2), then 2 (accumulating 3)
    assert seen == [(0, 6), (1, 9), (2, 11)]
    with pytest.raises(ValueError, match="accumulate_grad_batches"):
        _fit(torchbolt, tmp_path / "b", [GradientAccumulationScheduler({0: 2})], accumulate_grad_batches=2,
             enable_checkpointing=False)


def test_on_exception_checkpoint_in_fit_and_resume_from_last(tmp_path: pathlib.Path) -> None:
    model_cls, data_cls = torchbolt_classes()

    class Crashing(model_cls):  # type: ignore[misc,valid-type]
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.global_step == 8:
                raise RuntimeError("crash at step 8")
            return super().training_step(batch, batch_idx)

    exc = OnExceptionCheckpoint(tmp_path / "ckpt")
    trainer = torchbolt.Trainer(callbacks=[exc], **trainer_kwargs(tmp_path, logger=False))
    with pytest.raises(RuntimeError, match="crash at step 8"):
        trainer.fit(Crashing(), datamodule=data_cls())
    saved = safe_load(exc.ckpt_path)
    assert saved["global_step"] == 8
    # a new fit with the callback and no ckpt_path resumes from it ("last"), then removes it on success
    trainer2 = torchbolt.Trainer(callbacks=[OnExceptionCheckpoint(tmp_path / "ckpt")],
                                 **trainer_kwargs(tmp_path, logger=False))
    trainer2.fit(model_cls(), datamodule=data_cls())
    assert trainer2.global_step == 18 and trainer2.ckpt_path == exc.ckpt_path
    assert not os.path.exists(exc.ckpt_path)
