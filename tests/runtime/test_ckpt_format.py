"""What a torchbolt `.ckpt` holds (Lightning's top-level keys, §6.3), the checkpoint hooks and their order,
`load_from_checkpoint`, and how `ckpt_path="best"|"last"|path` is resolved."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
import torch
from ckpt_models import torchbolt_classes, trainer_kwargs, weights
from torchbolt import Callback, Trainer, seed_everything
from torchbolt.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from torchbolt.checkpoint import CheckpointNotFoundError, UnsafeCheckpointError
from torchbolt.checkpoint.io import safe_load
from torchbolt.trainer.checkpoint_connector import LIGHTNING_COMPAT_VERSION, resolve_ckpt_path

Model, Data = torchbolt_classes()

FULL_KEYS = ["epoch", "global_step", "pytorch-lightning_version", "torchbolt_version", "state_dict", "loops",
             "callbacks", "optimizer_states", "lr_schedulers", "hparams_name", "hyper_parameters",
             "datamodule_hparams_name", "datamodule_hyper_parameters", Data.__qualname__, "user_key"]


class OrderRecorder(Callback):
    """Records checkpoint hook calls (and keeps a state so it appears in `callbacks`)."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.loaded_state: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        self.log.append("cb.state_dict")
        return {"calls": 1}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.log.append("cb.load_state_dict")
        self.loaded_state = state_dict

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        self.log.append("cb.on_save_checkpoint")
        assert "hyper_parameters" in checkpoint and "user_key" not in checkpoint  # module hook runs after
        checkpoint["from_callback"] = True

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        self.log.append("cb.on_load_checkpoint")


def _fit(root: pathlib.Path, *, callbacks: list[Any] | None = None, model: Any = None, **kw: Any) -> tuple[Any, Any, Any]:
    seed_everything(0)
    model = model or Model(hidden=5, lr=0.03)
    data = Data(batch_size=12)
    ckpt_path = kw.pop("ckpt_path", None)
    trainer = Trainer(**trainer_kwargs(root, max_epochs=kw.pop("max_epochs", 2), logger=False,
                                       callbacks=callbacks or [], **kw))
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer, model, data


def test_checkpoint_keys_and_contents(tmp_path: pathlib.Path) -> None:
    log: list[str] = []
    trainer, model, _ = _fit(tmp_path, callbacks=[OrderRecorder(log)])
    path = tmp_path / "manual.ckpt"
    trainer.save_checkpoint(path)
    ckpt = safe_load(path)
    assert [k for k in ckpt if k != "from_callback"] == FULL_KEYS
    assert ckpt["from_callback"] is True
    assert ckpt["pytorch-lightning_version"] == LIGHTNING_COMPAT_VERSION
    assert (ckpt["epoch"], ckpt["global_step"]) == (trainer.current_epoch, trainer.global_step) == (2, 8)
    assert set(ckpt["loops"]) == {"fit_loop", "validate_loop", "test_loop", "predict_loop"}
    assert set(ckpt["loops"]["fit_loop"]) >= {"state_dict", "epoch_loop.batch_progress", "epoch_progress",
                                              "epoch_loop.automatic_optimization.optim_progress"}
    assert ckpt["hparams_name"] == "kwargs"
    assert ckpt["hyper_parameters"] == {"hidden": 5, "lr": 0.03, "dropout": 0.1, "features": 6}
    assert ckpt["datamodule_hyper_parameters"] == {"batch_size": 12, "n": 48}
    assert ckpt[Data.__qualname__] == {"counter": 0}
    assert ckpt["user_key"] == {"epoch_seen": 2}
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt["state_dict"][key], value)
    assert len(ckpt["optimizer_states"]) == 1 and "momentum_buffer" in str(ckpt["optimizer_states"][0]["state"])
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 2
    mc_key = next(k for k in ckpt["callbacks"] if k.startswith("ModelCheckpoint"))
    assert set(ckpt["callbacks"][mc_key]) >= {"best_model_path", "best_k_models", "last_model_path"}
    assert ckpt["callbacks"]["OrderRecorder"] == {"calls": 1}
    # order inside dump_checkpoint: state_dict of callbacks first, hooks last
    last = log[-2:]
    assert last == ["cb.state_dict", "cb.on_save_checkpoint"]


def test_weights_only_checkpoint(tmp_path: pathlib.Path) -> None:
    log: list[str] = []
    trainer, _, _ = _fit(tmp_path, callbacks=[OrderRecorder(log)])
    log.clear()
    trainer.save_checkpoint(tmp_path / "w.ckpt", weights_only=True)
    ckpt = safe_load(tmp_path / "w.ckpt")
    assert [k for k in ckpt] == ["epoch", "global_step", "pytorch-lightning_version", "torchbolt_version",
                                 "state_dict", "loops", "hparams_name", "hyper_parameters",
                                 "datamodule_hparams_name", "datamodule_hyper_parameters", Data.__qualname__,
                                 "user_key"]
    assert log == []  # callbacks neither save state nor see the hook for a weights-only file
    with pytest.raises(KeyError, match="save_weights_only"):
        _fit(tmp_path / "again", ckpt_path=str(tmp_path / "w.ckpt"), max_epochs=3)


def test_restore_hook_order_and_states(tmp_path: pathlib.Path) -> None:
    log: list[str] = []
    trainer, _, _ = _fit(tmp_path, callbacks=[OrderRecorder(log)])
    trainer.save_checkpoint(tmp_path / "full.ckpt")

    class Tracking(Model):  # type: ignore[misc,valid-type]
        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            log.append("module.on_load_checkpoint")
            super().on_load_checkpoint(checkpoint)

        def configure_optimizers(self) -> Any:
            log.append("configure_optimizers")
            return super().configure_optimizers()

        def on_fit_start(self) -> None:
            log.append("on_fit_start")

    log.clear()
    recorder = OrderRecorder(log)
    model = Tracking(hidden=5, lr=0.03)
    trainer2, model2, data2 = _fit(tmp_path / "r", callbacks=[recorder], model=model, max_epochs=3,
                                   ckpt_path=str(tmp_path / "full.ckpt"))
    first = [e for e in log if e in {"module.on_load_checkpoint", "cb.on_load_checkpoint", "cb.load_state_dict",
                                     "configure_optimizers", "on_fit_start"}][:5]
    assert first == ["module.on_load_checkpoint", "cb.on_load_checkpoint", "cb.load_state_dict",
                     "configure_optimizers", "on_fit_start"]
    assert recorder.loaded_state == {"calls": 1}
    assert model2.loaded_extra == {"epoch_seen": 2}
    assert trainer2.global_step == 12 and trainer2.current_epoch == 3


def test_load_from_checkpoint_with_overrides_and_map_location(tmp_path: pathlib.Path) -> None:
    trainer, model, _ = _fit(tmp_path)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = Model.load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu")
    assert loaded.hparams.hidden == 5 and loaded.hparams.lr == 0.03
    for key, value in weights(model).items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert loaded.loaded_extra == {"epoch_seen": 2}  # on_load_checkpoint ran
    override = Model.load_from_checkpoint(str(tmp_path / "m.ckpt"), lr=0.5, dropout=0.0)
    assert override.hparams.lr == 0.5 and override.hparams.dropout == 0.0 and override.hparams.hidden == 5
    with pytest.raises(RuntimeError, match="size mismatch|Missing|Unexpected"):
        Model.load_from_checkpoint(tmp_path / "m.ckpt", hidden=7)
    dm = Data.load_from_checkpoint(tmp_path / "m.ckpt", n=24)
    assert dm.hparams.batch_size == 12 and dm.hparams.n == 24
    with pytest.raises(CheckpointNotFoundError, match="nope.ckpt"):
        Model.load_from_checkpoint(tmp_path / "nope.ckpt")


def test_load_from_checkpoint_refuses_pickled_code(tmp_path: pathlib.Path) -> None:
    trainer, _, _ = _fit(tmp_path)
    ckpt = safe_load(_save(trainer, tmp_path / "m.ckpt"))
    ckpt["hyper_parameters"]["activation"] = torch.nn.functional.gelu  # a callable in the hparams
    torch.save(ckpt, tmp_path / "callable.ckpt")
    with pytest.raises(UnsafeCheckpointError, match="gelu.*weights_only=False"):
        Model.load_from_checkpoint(tmp_path / "callable.ckpt")
    trusted = Model.load_from_checkpoint(tmp_path / "callable.ckpt", weights_only=False)
    assert trusted.hparams.lr == 0.03


def _save(trainer: Any, path: pathlib.Path) -> pathlib.Path:
    trainer.save_checkpoint(path)
    return path


def test_validate_and_test_with_best_and_last(tmp_path: pathlib.Path) -> None:
    mc = ModelCheckpoint(dirpath=tmp_path / "c", monitor="val_loss", save_last=True, filename="{epoch}")
    trainer, model, data = _fit(tmp_path, callbacks=[mc], max_epochs=3)
    assert mc.best_model_path and os.path.exists(mc.best_model_path)
    best = safe_load(mc.best_model_path)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # the in-memory weights differ from every file now
    results = trainer.validate(model, datamodule=data, ckpt_path="best")
    assert results[0]["val_loss"] == pytest.approx(float(best["callbacks"][mc.state_key]["best_model_score"]), rel=1e-5)
    for key, value in best["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value)
    trainer.test(model, datamodule=data, ckpt_path="last")
    last = safe_load(tmp_path / "c" / "last.ckpt")
    for key, value in last["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value)


def test_resolve_ckpt_path_errors_and_choices(tmp_path: pathlib.Path) -> None:
    trainer = Trainer(**trainer_kwargs(tmp_path, enable_checkpointing=False, logger=False))
    with pytest.raises(ValueError, match="ModelCheckpoint` is not configured"):
        resolve_ckpt_path(trainer, "best", "validate")
    assert resolve_ckpt_path(trainer, None, "fit") is None
    assert resolve_ckpt_path(trainer, tmp_path / "x.ckpt", "fit") == str(tmp_path / "x.ckpt")
    mc = ModelCheckpoint(dirpath=tmp_path / "none")
    trainer = Trainer(**trainer_kwargs(tmp_path, callbacks=[mc], logger=False))
    with pytest.raises(ValueError, match="has not saved a best model"):
        resolve_ckpt_path(trainer, "best", "test")
    with pytest.warns(UserWarning, match="no last checkpoint"):
        assert resolve_ckpt_path(trainer, "last", "fit") is None
    # "last" picks the newest among last*.ckpt and the on-exception file
    (tmp_path / "none").mkdir()
    older = tmp_path / "none" / "last.ckpt"
    older.write_bytes(b"x")
    os.utime(older, (1_000_000, 1_000_000))
    exc = OnExceptionCheckpoint(tmp_path / "none", filename="crash")
    pathlib.Path(exc.ckpt_path).write_bytes(b"y")
    trainer = Trainer(**trainer_kwargs(tmp_path, callbacks=[mc, exc], logger=False))
    assert resolve_ckpt_path(trainer, "last", "fit") == exc.ckpt_path
    # fitting with an OnExceptionCheckpoint and no ckpt_path resumes from "last"
    assert resolve_ckpt_path(trainer, None, "fit") == exc.ckpt_path
    with pytest.raises(ValueError, match="not supported"):
        resolve_ckpt_path(trainer, "hpc", "fit")


class _Touch:
    """Unpickling runs `touch <marker>`."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_refused_by_fit_and_load_from_checkpoint(tmp_path: pathlib.Path) -> None:
    trainer, _, _ = _fit(tmp_path)
    ckpt = safe_load(_save(trainer, tmp_path / "good.ckpt"))
    marker = tmp_path / "pwned"
    ckpt["user_key"] = _Touch(marker)
    torch.save(ckpt, tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeCheckpointError, match="system"):
        _fit(tmp_path / "resume", ckpt_path=str(tmp_path / "evil.ckpt"), max_epochs=3)
    with pytest.raises(UnsafeCheckpointError):
        Model.load_from_checkpoint(tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeCheckpointError):
        Data.load_from_checkpoint(tmp_path / "evil.ckpt")
    assert not marker.exists()
