"""ModelCheckpoint, EarlyStopping and friends driven directly through their hooks by a small stand-in
Trainer (the decision logic, file names and bookkeeping, without a training loop). End-to-end behaviour
with the real Trainer is in test_cb_fit.py."""

from __future__ import annotations

import math
import os
import pathlib
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml
from torchbolt.callbacks.early_stopping import EarlyStopping, EarlyStoppingReason
from torchbolt.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
from torchbolt.callbacks.model_checkpoint import ModelCheckpoint
from torchbolt.callbacks.on_exception_checkpoint import OnExceptionCheckpoint
from torchbolt.checkpoint.io import atomic_save, safe_load
from torchbolt.utilities.exceptions import MisconfigurationException


@dataclass
class FakeTrainer:
    """The attributes checkpoint callbacks read, and a save_checkpoint that writes a small real file."""

    default_root_dir: str
    current_epoch: int = 0
    global_step: int = 0
    callback_metrics: dict[str, Any] = field(default_factory=dict)
    loggers: list[Any] = field(default_factory=list)
    state: Any = field(default_factory=lambda: SimpleNamespace(fn="fit"))
    sanity_checking: bool = False
    fast_dev_run: bool = False
    should_stop: bool = False
    val_check_interval: float = 1.0
    check_val_every_n_epoch: int = 1
    num_val_batches: list[int] = field(default_factory=lambda: [2])
    enable_validation: bool = True
    is_last_batch: bool = False
    is_global_zero: bool = True
    ckpt_path: str | None = None
    validation_has_run: bool = True
    validation_time_interval: float | None = None
    accumulate_grad_batches: int = 1
    world_size: int = 1
    global_rank: int = 0
    log_every_n_steps: int = 50
    optimizers: list[Any] = field(default_factory=list)
    lr_scheduler_configs: list[Any] = field(default_factory=list)
    fit_loop: Any = field(default_factory=lambda: SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=0)))
    saved: list[str] = field(default_factory=list)

    def print(self, *args: Any) -> None:
        print(*args)

    def save_checkpoint(self, filepath: str, weights_only: bool = False) -> None:
        # the callback must never delete a file before the replacement exists: record the folder content
        atomic_save({"global_step": self.global_step, "weights_only": weights_only}, filepath)
        self.saved.append(filepath)


def _names(folder: str | os.PathLike[str]) -> list[str]:
    return sorted(p for p in os.listdir(folder) if not p.startswith("."))


# --------------------------------------------------------------------------------------------------
# ModelCheckpoint: construction
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"save_top_k": -2}, "save_top_k"),
        ({"every_n_train_steps": -1}, "every_n_train_steps"),
        ({"every_n_epochs": -1}, "every_n_epochs"),
        ({"every_n_train_steps": 2, "every_n_epochs": 1}, "mutually exclusive"),
        ({"every_n_epochs": 1, "train_time_interval": timedelta(seconds=1)}, "mutually exclusive"),
        ({"save_top_k": 3}, "monitor=None"),
        ({"mode": "maximum"}, "mode"),
        ({"save_last": "yes"}, "save_last"),
        ({"train_time_interval": 5}, "timedelta"),
    ],
)
def test_model_checkpoint_rejects_bad_configuration(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(MisconfigurationException, match=match):
        ModelCheckpoint(**kwargs)


def test_model_checkpoint_defaults_and_state_key(tmp_path: pathlib.Path) -> None:
    cb = ModelCheckpoint(monitor="val_loss")
    assert (cb.every_n_epochs, cb._every_n_train_steps, cb._train_time_interval) == (1, 0, None)
    assert cb.state_key == (
        "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
        "'every_n_epochs': 1, 'train_time_interval': None}"
    )
    assert ModelCheckpoint(every_n_train_steps=5).every_n_epochs == 0
    assert ModelCheckpoint._monitoring is True
    assert ModelCheckpoint(dirpath=tmp_path / "x" / ".." / "y").dirpath == str((tmp_path / "y").resolve())


# --------------------------------------------------------------------------------------------------
# Filename templates
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("filename", "auto", "metrics", "expected"),
    [
        (None, True, {"epoch": 3, "step": 12}, "epoch=3-step=12.ckpt"),
        ("{epoch}", True, {"epoch": 0}, "epoch=0.ckpt"),
        ("{epoch:03d}", True, {"epoch": 5}, "epoch=005.ckpt"),
        ("{epoch}-{val_loss:.2f}", True, {"epoch": 2, "val_loss": 0.123456}, "epoch=2-val_loss=0.12.ckpt"),
        ("epoch={epoch}-validation_loss={val_loss:.2f}", False, {"epoch": 2, "val_loss": 0.123456},
         "epoch=2-validation_loss=0.12.ckpt"),
        ("{missing:d}", True, {}, "missing=0.ckpt"),
        ("{step}", True, {"step": 0}, "step=0.ckpt"),
        ("{val/acc:.3f}", True, {"val/acc": torch.tensor(0.98765)}, "val/acc=0.988.ckpt"),
        ("{val_loss}-{val_loss_ema:.1f}", True, {"val_loss": 1, "val_loss_ema": 2.25},
         "val_loss=1-val_loss_ema=2.2.ckpt"),
        ("model.{epoch}", True, {"epoch": 1}, "model.epoch=1.ckpt"),
    ],
)
def test_format_checkpoint_name(filename: str | None, auto: bool, metrics: dict[str, Any], expected: str) -> None:
    cb = ModelCheckpoint(filename=filename, auto_insert_metric_name=auto)
    assert cb.format_checkpoint_name(dict(metrics)) == expected


def test_format_checkpoint_name_version_prefix_and_dirpath(tmp_path: pathlib.Path) -> None:
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}")
    assert cb.format_checkpoint_name({"epoch": 1}, ver=2) == os.path.join(tmp_path, "epoch=1-v2.ckpt")
    assert cb.format_checkpoint_name({"epoch": 1}, prefix="pre") == os.path.join(tmp_path, "pre-epoch=1.ckpt")
    assert cb.format_checkpoint_name({}, filename="last") == os.path.join(tmp_path, "last.ckpt")


# --------------------------------------------------------------------------------------------------
# Top-k bookkeeping
# --------------------------------------------------------------------------------------------------
def _epoch_end(cb: ModelCheckpoint, trainer: FakeTrainer, value: float | None, name: str = "val_loss") -> None:
    trainer.global_step += 4
    if value is not None:
        trainer.callback_metrics[name] = torch.tensor(value)
    cb.on_validation_end(trainer, None)  # type: ignore[arg-type]
    cb.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    trainer.current_epoch += 1


def _fit_start(cb: ModelCheckpoint, trainer: FakeTrainer) -> None:
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    cb.on_train_start(trainer, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "k", "scores", "kept"),
    [
        ("min", 2, [0.5, 0.4, 0.6, 0.1], {1: 0.4, 3: 0.1}),
        ("max", 2, [0.5, 0.4, 0.6, 0.1], {0: 0.5, 2: 0.6}),
        ("min", 1, [0.3, 0.2, 0.9, 0.25], {1: 0.2}),
        ("min", -1, [0.3, 0.2, 0.9], {0: 0.3, 1: 0.2, 2: 0.9}),
        ("min", 3, [float("nan"), 0.5, 0.4, 0.45], {1: 0.5, 2: 0.4, 3: 0.45}),
    ],
)
def test_top_k_rotation(tmp_path: pathlib.Path, mode: str, k: int, scores: list[float], kept: dict[int, float]) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", monitor="val_loss", mode=mode, save_top_k=k)
    _fit_start(cb, trainer)
    for score in scores:
        _epoch_end(cb, trainer, score)
    assert _names(tmp_path) == sorted(f"epoch={e}.ckpt" for e in kept)
    assert {os.path.basename(p): float(v) for p, v in cb.best_k_models.items()} == {
        f"epoch={e}.ckpt": pytest.approx(v) for e, v in kept.items()
    }
    best_epoch = (min if mode == "min" else max)(kept, key=kept.get)  # type: ignore[arg-type]
    assert cb.best_model_path == os.path.join(tmp_path, f"epoch={best_epoch}.ckpt")
    assert float(cb.best_model_score) == pytest.approx(kept[best_epoch])  # type: ignore[arg-type]
    if k != -1 and len(scores) >= k:
        worst = (max if mode == "min" else min)(kept, key=kept.get)  # type: ignore[arg-type]
        assert cb.kth_best_model_path == os.path.join(tmp_path, f"epoch={worst}.ckpt")
        assert float(cb.kth_value) == pytest.approx(kept[worst])


def test_nan_score_ranks_last(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", monitor="val_loss", save_top_k=2)
    _fit_start(cb, trainer)
    for score in (float("nan"), 0.5, 0.7):
        _epoch_end(cb, trainer, score)
    assert _names(tmp_path) == ["epoch=1.ckpt", "epoch=2.ckpt"]
    assert math.isinf(float(ModelCheckpoint(monitor="m", mode="min").kth_value))


def test_save_top_k_zero_saves_nothing_but_last(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=0, save_last=True)
    _fit_start(cb, trainer)
    for score in (0.3, 0.2):
        _epoch_end(cb, trainer, score)
    assert _names(tmp_path) == []  # as in Lightning: with nothing saved, `last` waits for the end of training
    cb.on_train_end(trainer, None)  # type: ignore[arg-type]
    assert _names(tmp_path) == ["last.ckpt"]
    assert cb.best_model_path == "" and cb.last_model_path == os.path.join(tmp_path, "last.ckpt")
    assert safe_load(cb.last_model_path)["global_step"] == 8


def test_no_monitor_keeps_latest_only(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path)
    _fit_start(cb, trainer)
    for _ in range(3):
        _epoch_end(cb, trainer, None)
    assert _names(tmp_path) == ["epoch=2-step=12.ckpt"]
    assert cb.best_model_path.endswith("epoch=2-step=12.ckpt")


def test_save_top_k_minus_one_without_monitor_keeps_all(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, filename="{epoch}")
    _fit_start(cb, trainer)
    for _ in range(3):
        _epoch_end(cb, trainer, None)
    assert _names(tmp_path) == ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt"]


def test_replacement_written_before_old_file_is_deleted(tmp_path: pathlib.Path) -> None:
    """The bookkeeping deletes the dropped checkpoint only after the new one is on disk."""
    events: list[tuple[str, list[str]]] = []

    class Recording(FakeTrainer):
        def save_checkpoint(self, filepath: str, weights_only: bool = False) -> None:
            super().save_checkpoint(filepath, weights_only)
            events.append(("saved", _names(tmp_path)))

    trainer = Recording(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", monitor="val_loss", save_top_k=1)
    _fit_start(cb, trainer)
    _epoch_end(cb, trainer, 0.5)
    _epoch_end(cb, trainer, 0.4)
    # at the moment the second file was complete, the first one still existed
    assert events[1] == ("saved", ["epoch=0.ckpt", "epoch=1.ckpt"])
    assert _names(tmp_path) == ["epoch=1.ckpt"]


def test_version_counter(tmp_path: pathlib.Path) -> None:
    (tmp_path / "epoch=0.ckpt").write_bytes(b"from an earlier run")
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1)
    _fit_start(cb, trainer)
    _epoch_end(cb, trainer, None)
    assert _names(tmp_path) == ["epoch=0-v1.ckpt", "epoch=0.ckpt"]
    assert (tmp_path / "epoch=0.ckpt").read_bytes() == b"from an earlier run"

    other = tmp_path / "other"
    other.mkdir()
    (other / "epoch=0.ckpt").write_bytes(b"old")
    trainer = FakeTrainer(str(other))
    cb = ModelCheckpoint(dirpath=other, filename="{epoch}", save_top_k=-1, enable_version_counter=False)
    _fit_start(cb, trainer)
    _epoch_end(cb, trainer, None)
    assert _names(other) == ["epoch=0.ckpt"]
    assert safe_load(other / "epoch=0.ckpt")["global_step"] == 4  # overwritten


def test_save_last_true_and_collision(tmp_path: pathlib.Path) -> None:
    (tmp_path / "last.ckpt").write_bytes(b"previous run")
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_last=True)
    _fit_start(cb, trainer)
    _epoch_end(cb, trainer, None)
    _epoch_end(cb, trainer, None)
    assert _names(tmp_path) == ["epoch=1.ckpt", "last-v1.ckpt", "last.ckpt"]
    assert cb.last_model_path == os.path.join(tmp_path, "last-v1.ckpt")
    assert safe_load(cb.last_model_path)["global_step"] == 8


def test_save_last_link(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_last="link", monitor="val_loss", save_top_k=2)
    _fit_start(cb, trainer)
    for score in (0.5, 0.4, 0.6):
        _epoch_end(cb, trainer, score)
    last = tmp_path / "last.ckpt"
    assert last.is_symlink()
    # epoch 2 (0.6) did not enter the top 2, so the link still names the newest saved file, relatively
    assert os.readlink(last) == "epoch=1.ckpt"
    assert safe_load(last)["global_step"] == 8
    assert _names(tmp_path) == ["epoch=0.ckpt", "epoch=1.ckpt", "last.ckpt"]


def test_every_n_epochs(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", every_n_epochs=2, save_top_k=-1)
    _fit_start(cb, trainer)
    for _ in range(5):
        _epoch_end(cb, trainer, None)
    assert _names(tmp_path) == ["epoch=1.ckpt", "epoch=3.ckpt"]


def test_every_n_train_steps(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{step}", every_n_train_steps=3, save_top_k=-1)
    _fit_start(cb, trainer)
    for _ in range(10):
        trainer.global_step += 1
        cb.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    # epoch-end does not save for a step-triggered callback
    cb.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    assert _names(tmp_path) == ["step=3.ckpt", "step=6.ckpt", "step=9.ckpt"]


def test_train_time_interval(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("torchbolt.callbacks.model_checkpoint.time.monotonic", lambda: clock[0])
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{step}", train_time_interval=timedelta(seconds=10),
                         save_top_k=-1)
    _fit_start(cb, trainer)
    for _ in range(6):
        clock[0] += 4.0  # 104, 108, 112 (save), 116, 120, 124 (save)
        trainer.global_step += 1
        cb.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    assert _names(tmp_path) == ["step=3.ckpt", "step=6.ckpt"]


def test_save_on_train_epoch_end_resolution(tmp_path: pathlib.Path) -> None:
    cb = ModelCheckpoint(dirpath=tmp_path)
    trainer = FakeTrainer(str(tmp_path))
    assert cb._should_save_on_train_epoch_end(trainer) is True
    trainer.val_check_interval = 0.5
    assert cb._should_save_on_train_epoch_end(trainer) is False
    trainer.val_check_interval, trainer.check_val_every_n_epoch = 1.0, 2
    assert cb._should_save_on_train_epoch_end(trainer) is False
    trainer.check_val_every_n_epoch, trainer.num_val_batches = 1, [0]
    trainer.val_check_interval = 0.5
    assert cb._should_save_on_train_epoch_end(trainer) is True  # no validation at all
    assert ModelCheckpoint(save_on_train_epoch_end=False)._should_save_on_train_epoch_end(trainer) is False


def test_skips_outside_fit_sanity_and_fast_dev_run(tmp_path: pathlib.Path) -> None:
    for change in ({"state": SimpleNamespace(fn="validate")}, {"sanity_checking": True}, {"fast_dev_run": 1}):
        folder = tmp_path / str(len(os.listdir(tmp_path)))
        trainer = FakeTrainer(str(folder), **change)  # type: ignore[arg-type]
        cb = ModelCheckpoint(dirpath=folder)
        _fit_start(cb, trainer)
        _epoch_end(cb, trainer, None)
        assert not folder.exists() or _names(folder) == []


def test_missing_monitor_raises_after_validation_warns_before(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path), callback_metrics={"train_loss": torch.tensor(1.0)})
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_los")
    _fit_start(cb, trainer)
    with pytest.raises(MisconfigurationException, match=r"could not find the monitored key.*'train_loss'.*HINT"):
        _epoch_end(cb, trainer, None)
    trainer = FakeTrainer(str(tmp_path), validation_has_run=False)
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_los")
    _fit_start(cb, trainer)
    with pytest.warns(UserWarning, match="could not find the monitored key"):
        _epoch_end(cb, trainer, None)


def test_state_dict_roundtrip_and_dirpath_change(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2, save_last=True)
    _fit_start(cb, trainer)
    for score in (0.5, 0.3, 0.4):
        _epoch_end(cb, trainer, score)
    state = cb.state_dict()
    assert set(state) == {"monitor", "best_model_score", "best_model_path", "current_score", "dirpath",
                          "best_k_models", "kth_best_model_path", "kth_value", "last_model_path"}
    same = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", save_top_k=2)
    same.load_state_dict(state)
    assert same.best_k_models == cb.best_k_models and same.last_model_path == cb.last_model_path
    assert same.kth_best_model_path == cb.kth_best_model_path
    moved = ModelCheckpoint(dirpath=tmp_path / "elsewhere", monitor="val_loss", save_top_k=2)
    with pytest.warns(UserWarning, match="only `best_model_path`"):
        moved.load_state_dict(state)
    assert moved.best_model_path == cb.best_model_path and moved.best_k_models == {}


def test_to_yaml(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path))
    cb = ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", monitor="val_loss", save_top_k=2)
    _fit_start(cb, trainer)
    for score in (0.5, 0.25):
        _epoch_end(cb, trainer, score)
    cb.to_yaml()
    data = yaml.safe_load((tmp_path / "best_k_models.yaml").read_text())
    assert data == {os.path.join(tmp_path, "epoch=0.ckpt"): 0.5, os.path.join(tmp_path, "epoch=1.ckpt"): 0.25}


def test_dirpath_resolution(tmp_path: pathlib.Path) -> None:
    class L:
        save_dir, name, version = str(tmp_path / "logs"), "exp", 3

    trainer = FakeTrainer(str(tmp_path), loggers=[L()])
    cb = ModelCheckpoint()
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    assert cb.dirpath == os.path.join(tmp_path, "logs", "exp", "version_3", "checkpoints")
    cb = ModelCheckpoint()
    cb.setup(FakeTrainer(str(tmp_path)), None, "fit")  # type: ignore[arg-type]
    assert cb.dirpath == os.path.join(tmp_path, "checkpoints")


def test_save_on_exception(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path), global_step=7, current_epoch=1)
    cb = ModelCheckpoint(dirpath=tmp_path, save_on_exception=True, save_last=True)
    _fit_start(cb, trainer)
    cb.on_exception(trainer, None, RuntimeError("boom"))  # type: ignore[arg-type]
    assert _names(tmp_path) == ["epoch=1-step=7.ckpt", "last.ckpt"]


# --------------------------------------------------------------------------------------------------
# EarlyStopping
# --------------------------------------------------------------------------------------------------
def _check(cb: EarlyStopping, trainer: FakeTrainer, value: float) -> None:
    trainer.callback_metrics["val_loss"] = torch.tensor(value)
    cb.on_validation_end(trainer, None)  # type: ignore[arg-type]
    cb.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    trainer.current_epoch += 1


def _run_es(values: list[float], **kwargs: Any) -> tuple[EarlyStopping, FakeTrainer, int]:
    trainer = FakeTrainer("/nonexistent")
    cb = EarlyStopping(monitor="val_loss", **kwargs)
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    checks = 0
    for value in values:
        _check(cb, trainer, value)
        checks += 1
        if trainer.should_stop:
            break
    return cb, trainer, checks


@pytest.mark.parametrize(
    ("values", "kwargs", "stops_after", "reason"),
    [
        ([1.0, 0.9, 0.95, 0.96, 0.97, 0.5], {"patience": 3}, 5, EarlyStoppingReason.PATIENCE_EXHAUSTED),
        ([1.0, 0.9, 0.95, 0.8, 0.97, 0.98], {"patience": 2}, 6, EarlyStoppingReason.PATIENCE_EXHAUSTED),
        ([1.0, 0.95, 0.92], {"patience": 1, "min_delta": 0.1}, 2, EarlyStoppingReason.PATIENCE_EXHAUSTED),
        ([1.0, 0.5, 0.5], {"patience": 0}, 3, EarlyStoppingReason.PATIENCE_EXHAUSTED),
        ([1.0, 2.0, 3.0], {"mode": "max", "patience": 1, "stopping_threshold": 2.5}, 3,
         EarlyStoppingReason.STOPPING_THRESHOLD),
        ([1.0, 0.6, 0.4], {"stopping_threshold": 0.5}, 3, EarlyStoppingReason.STOPPING_THRESHOLD),
        ([1.0, 5.0], {"divergence_threshold": 4.0, "patience": 10}, 2, EarlyStoppingReason.DIVERGENCE_THRESHOLD),
        ([1.0, float("nan")], {"patience": 10}, 2, EarlyStoppingReason.NON_FINITE_METRIC),
        ([1.0, float("inf")], {"patience": 10}, 2, EarlyStoppingReason.NON_FINITE_METRIC),
    ],
)
def test_early_stopping_reasons(values: list[float], kwargs: dict[str, Any], stops_after: int,
                                reason: EarlyStoppingReason) -> None:
    cb, trainer, checks = _run_es(values, **kwargs)
    assert trainer.should_stop and checks == stops_after
    assert cb.stopping_reason is reason
    assert cb.stopped_epoch == stops_after - 1
    assert cb.stopping_reason_message and "Signaling Trainer to stop" in cb.stopping_reason_message


def test_early_stopping_check_finite_off_and_min_delta_semantics() -> None:
    cb, trainer, _ = _run_es([1.0, float("nan"), 0.5], patience=5, check_finite=False)
    assert not trainer.should_stop and float(cb.best_score) == 0.5
    cb, trainer, _ = _run_es([1.0, 0.95], patience=5, min_delta=0.1)
    assert cb.wait_count == 1 and float(cb.best_score) == 1.0  # 0.05 is not an improvement of more than 0.1
    assert cb.min_delta == -0.1
    assert EarlyStopping(monitor="x", mode="max", min_delta=0.1).min_delta == 0.1


def test_early_stopping_message_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="torchbolt.callbacks.early_stopping"):
        _run_es([1.0, 1.1], patience=1)
    assert "did not improve in the last 1 records" in caplog.text


def test_early_stopping_strict_lists_logged_metrics() -> None:
    trainer = FakeTrainer("/x", callback_metrics={"train_loss": torch.tensor(1.0), "val_acc": torch.tensor(0.5)})
    cb = EarlyStopping(monitor="val_loss")
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"`val_loss` which is not available.*`train_loss`, `val_acc`"):
        cb.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    lenient = EarlyStopping(monitor="val_loss", strict=False)
    lenient.setup(trainer, None, "fit")  # type: ignore[arg-type]
    lenient.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    assert not trainer.should_stop


def test_early_stopping_check_on_train_epoch_end_resolution() -> None:
    trainer = FakeTrainer("/x", val_check_interval=0.5)
    cb = EarlyStopping(monitor="val_loss", patience=0)
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    assert cb._check_on_train_epoch_end is False
    trainer.callback_metrics["val_loss"] = torch.tensor(1.0)
    cb.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    assert cb.wait_count == 0 and math.isinf(float(cb.best_score))  # ignored: checks after validation
    cb.on_validation_end(trainer, None)  # type: ignore[arg-type]
    assert float(cb.best_score) == 1.0
    forced = EarlyStopping(monitor="val_loss", check_on_train_epoch_end=True)
    forced.setup(trainer, None, "fit")  # type: ignore[arg-type]
    assert forced._check_on_train_epoch_end is True


def test_early_stopping_skips_sanity_check_and_other_entry_points() -> None:
    for change in ({"sanity_checking": True}, {"state": SimpleNamespace(fn="validate")}):
        trainer = FakeTrainer("/x", **change)  # type: ignore[arg-type]
        cb = EarlyStopping(monitor="val_loss", patience=0)
        cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
        _check(cb, trainer, 1.0)
        _check(cb, trainer, 2.0)
        assert not trainer.should_stop


def test_early_stopping_state_roundtrip_and_key() -> None:
    cb, _, _ = _run_es([1.0, 1.1, 1.2], patience=2)
    state = cb.state_dict()
    assert set(state) == {"wait_count", "stopped_epoch", "best_score", "patience", "stopping_reason",
                          "stopping_reason_message"}
    assert state["stopping_reason"] == 3
    fresh = EarlyStopping(monitor="val_loss")
    fresh.load_state_dict(state)
    assert (fresh.wait_count, fresh.stopped_epoch, fresh.patience, fresh.stopping_reason) == (
        2, 2, 2, EarlyStoppingReason.PATIENCE_EXHAUSTED)
    assert fresh.state_key == "EarlyStopping{'monitor': 'val_loss', 'mode': 'min'}"
    assert EarlyStopping._monitoring is True


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"monitor": ""}, "monitor"), ({"monitor": "x", "mode": "avg"}, "mode"),
    ({"monitor": "x", "patience": -1}, "patience"), ({"monitor": "x", "min_delta": -0.5}, "min_delta"),
])
def test_early_stopping_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(MisconfigurationException, match=match):
        EarlyStopping(**kwargs)


# --------------------------------------------------------------------------------------------------
# OnExceptionCheckpoint, GradientAccumulationScheduler
# --------------------------------------------------------------------------------------------------
def test_on_exception_checkpoint_saves_and_keeps_file(tmp_path: pathlib.Path) -> None:
    trainer = FakeTrainer(str(tmp_path), global_step=5)
    cb = OnExceptionCheckpoint(tmp_path, filename="crash")
    assert cb.ckpt_path == os.path.join(tmp_path, "crash.ckpt")
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    cb.on_exception(trainer, None, KeyboardInterrupt())  # type: ignore[arg-type]
    cb.teardown(trainer, None, "fit")  # type: ignore[arg-type]
    assert safe_load(cb.ckpt_path)["global_step"] == 5
    # a later run that ends normally removes the stale file
    cb.setup(trainer, None, "fit")  # type: ignore[arg-type]
    cb.teardown(trainer, None, "fit")  # type: ignore[arg-type]
    assert not os.path.exists(cb.ckpt_path)
    with pytest.raises(ValueError, match="empty"):
        OnExceptionCheckpoint(tmp_path, filename="")


def test_gradient_accumulation_scheduler() -> None:
    cb = GradientAccumulationScheduler({2: 4, 5: 2})
    assert [cb.get_accumulate_grad_batches(e) for e in range(7)] == [1, 1, 4, 4, 4, 2, 2]
    trainer = FakeTrainer("/x", current_epoch=3)
    cb.on_train_epoch_start(trainer)  # type: ignore[arg-type]
    assert trainer.accumulate_grad_batches == 4
    with pytest.raises(TypeError):
        GradientAccumulationScheduler({})
    with pytest.raises(MisconfigurationException, match="ints >= 0"):
        GradientAccumulationScheduler({-1: 2})
    with pytest.raises(MisconfigurationException, match="ints >= 1"):
        GradientAccumulationScheduler({0: 0})


# --------------------------------------------------------------------------------------------------
# LearningRateMonitor
# --------------------------------------------------------------------------------------------------
class _RecordingLogger:
    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, float], int]] = []

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append((dict(metrics), step))


def _lr_trainer(optimizers: list[Any], configs: list[Any]) -> Any:
    trainer = FakeTrainer("/x", loggers=[_RecordingLogger()])
    trainer.optimizers = optimizers
    trainer.lr_scheduler_configs = configs
    trainer.log_every_n_steps = 1
    return trainer


def test_lr_monitor_names_and_values() -> None:
    from torchbolt.callbacks.lr_monitor import LearningRateMonitor

    w1, w2, w3 = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    adam_a = torch.optim.Adam([{"params": [w1]}, {"params": [w2], "lr": 0.5}], lr=0.1, weight_decay=0.01)
    adam_b = torch.optim.Adam([w3], lr=0.2, betas=(0.8, 0.99))
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3, momentum=0.7)
    sched = torch.optim.lr_scheduler.StepLR(sgd, step_size=1)
    config = SimpleNamespace(scheduler=sched, interval="step", name=None)
    trainer = _lr_trainer([adam_a, adam_b, sgd], [config])
    cb = LearningRateMonitor(log_momentum=True, log_weight_decay=True)
    cb.on_train_start(trainer)
    assert list(cb.lrs) == ["lr-SGD", "lr-Adam/pg1", "lr-Adam/pg2", "lr-Adam-1"]
    cb.on_train_batch_start(trainer)
    metrics, step = trainer.loggers[0].rows[-1]
    assert step == 0
    assert metrics == pytest.approx({
        "lr-SGD": 0.3, "lr-SGD-momentum": 0.7, "lr-SGD-weight_decay": 0.0,
        "lr-Adam/pg1": 0.1, "lr-Adam/pg1-momentum": 0.9, "lr-Adam/pg1-weight_decay": 0.01,
        "lr-Adam/pg2": 0.5, "lr-Adam/pg2-momentum": 0.9, "lr-Adam/pg2-weight_decay": 0.01,
        "lr-Adam-1": 0.2, "lr-Adam-1-momentum": 0.8, "lr-Adam-1-weight_decay": 0.0,
    })
    # logging_interval=None follows each scheduler: at epoch start the step-interval scheduler is skipped
    trainer.loggers[0].rows.clear()
    cb.on_train_epoch_start(trainer)
    assert "lr-SGD" not in trainer.loggers[0].rows[-1][0] and "lr-Adam-1" in trainer.loggers[0].rows[-1][0]
    assert float(trainer.callback_metrics["lr-SGD"]) == pytest.approx(0.3)


def test_lr_monitor_intervals_named_scheduler_and_errors() -> None:
    from torchbolt.callbacks.lr_monitor import LearningRateMonitor

    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(sgd, step_size=1, gamma=0.5)
    trainer = _lr_trainer([sgd], [SimpleNamespace(scheduler=sched, interval="epoch", name="my-lr")])
    cb = LearningRateMonitor(logging_interval="epoch")
    cb.on_train_start(trainer)
    cb.on_train_batch_start(trainer)
    assert trainer.loggers[0].rows == []  # epoch interval: nothing per step
    cb.on_train_epoch_start(trainer)
    sgd.step()
    sched.step()
    cb.on_train_epoch_start(trainer)
    assert [r[0] for r in trainer.loggers[0].rows] == [{"my-lr": 1.0}, {"my-lr": 0.5}]
    assert cb.lrs["my-lr"] == [1.0, 0.5]
    with pytest.raises(MisconfigurationException, match="no logger"):
        LearningRateMonitor().on_train_start(FakeTrainer("/x"))  # type: ignore[arg-type]
    with pytest.raises(MisconfigurationException, match="logging_interval"):
        LearningRateMonitor(logging_interval="batch")
    twin = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "name": "a"},
                            {"params": [torch.nn.Parameter(torch.zeros(1))], "name": "a"}], lr=1.0)
    with pytest.raises(MisconfigurationException, match="distinct `name`"):
        LearningRateMonitor().on_train_start(_lr_trainer([twin], []))
