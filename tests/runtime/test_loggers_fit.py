"""Loggers inside a real fit: every scalar the module logged is found in TensorBoard's event files (read
with TensorBoard's own EventAccumulator) and in metrics.csv, at the steps Lightning uses (checked side by
side against Lightning 2.6.6 where it is installed)."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
import torch
import torchbolt
import yaml
from ckpt_models import read_metrics_csv, trainer_kwargs
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader
from torchbolt import Trainer
from torchbolt.callbacks import LearningRateMonitor, ModelCheckpoint
from torchbolt.loggers import CSVLogger, Logger, TensorBoardLogger

STEPS_PER_EPOCH = 5


def make_module(pl: Any) -> type:
    class Logged(pl.LightningModule):  # type: ignore[misc,name-defined]
        """Logs known values: `a` per step, `b` per epoch (mean), `v` in validation (mean)."""

        def __init__(self, fail_at: int | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = nn.Linear(2, 1)
            self.logged: list[tuple[str, int, int, float]] = []  # name, epoch, batch_idx, value

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.hparams.fail_at is not None and self.global_step == self.hparams.fail_at:
                raise RuntimeError("planned failure")
            a = float(self.current_epoch * 10 + batch_idx) / 4
            b = float(batch_idx + 1) / 8
            self.log("a", a, on_step=True, on_epoch=False)
            self.log("b", b, on_step=False, on_epoch=True)
            self.logged += [("a", self.current_epoch, batch_idx, a), ("b", self.current_epoch, batch_idx, b)]
            return self.layer(batch).sum()

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            v = float(self.current_epoch + 1) * (batch_idx + 1)
            self.log("v", v)
            self.logged.append(("v", self.current_epoch, batch_idx, v))

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(torch.ones(STEPS_PER_EPOCH * 2, 2), batch_size=2)

        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(torch.ones(4, 2), batch_size=2)

    return Logged


def _tb_scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _fit(pl: Any, root: pathlib.Path, **kw: Any) -> tuple[Any, Any, Any, Any]:
    loggers = kw.pop("loggers", None)
    if loggers is None:
        loggers = [pl.loggers.TensorBoardLogger(root, name="tb"), pl.loggers.CSVLogger(root, name="csv")]
    model = make_module(pl)(**kw.pop("model_kwargs", {}))
    kwargs = trainer_kwargs(root, max_epochs=2, logger=loggers, enable_checkpointing=False)
    kwargs.pop("deterministic")
    kwargs.update(kw)
    trainer = pl.Trainer(**kwargs)
    trainer.fit(model)
    return model, trainer, loggers[0], loggers[1] if len(loggers) > 1 else None


def _expected_from_module(model: Any) -> dict[str, list[tuple[int, float]]]:
    """What the loggers must hold, from the values the module logged (float32 as TensorBoard stores)."""
    f32 = lambda x: float(torch.tensor(x, dtype=torch.float32))  # noqa: E731
    a = [(e * STEPS_PER_EPOCH + i, f32(v)) for name, e, i, v in model.logged if name == "a"]
    b: dict[int, list[float]] = {}
    v: dict[int, list[float]] = {}
    for name, e, _, value in model.logged:
        if name == "b":
            b.setdefault(e, []).append(value)
        if name == "v":
            v.setdefault(e, []).append(value)
    last_step = lambda e: (e + 1) * STEPS_PER_EPOCH - 1  # noqa: E731
    return {
        "a": a,
        "b": [(last_step(e), f32(sum(vals) / len(vals))) for e, vals in sorted(b.items())],
        "v": [(last_step(e), f32(sum(vals) / len(vals))) for e, vals in sorted(v.items())],
        "epoch": sorted({(s, f32(s // STEPS_PER_EPOCH)) for s, _ in a} | {(last_step(e), f32(e)) for e in v}),
    }


def test_tensorboard_and_csv_hold_every_logged_scalar(tmp_path: pathlib.Path) -> None:
    model, trainer, tb, csv_logger = _fit(torchbolt, tmp_path)
    scalars = _tb_scalars(tb.log_dir)
    expected = _expected_from_module(model)
    for tag in ("a", "b", "v"):
        assert scalars[tag] == expected[tag], tag
    assert sorted(set(scalars["epoch"])) == expected["epoch"]
    assert scalars["hp_metric"] == [(0, -1.0)]
    rows = read_metrics_csv(os.path.join(csv_logger.log_dir, "metrics.csv"))
    for tag in ("a", "b", "v"):
        got = [(int(r["step"]), float(torch.tensor(float(r[tag]), dtype=torch.float32))) for r in rows if r[tag]]
        assert got == expected[tag], tag
    assert yaml.safe_load(pathlib.Path(csv_logger.log_dir, "hparams.yaml").read_text()) == {"fail_at": None}
    assert yaml.safe_load(pathlib.Path(tb.log_dir, "hparams.yaml").read_text()) == {"fail_at": None}
    assert trainer.log_dir == tb.log_dir
    assert trainer.logger is tb and trainer.loggers == [tb, csv_logger]


@pytest.mark.lightning
def test_logged_steps_match_lightning(tmp_path: pathlib.Path) -> None:
    import lightning.pytorch as lpl

    _, _, tb, csv_logger = _fit(torchbolt, tmp_path / "tb")
    _, _, ltb, lcsv = _fit(lpl, tmp_path / "lightning")
    ours, theirs = _tb_scalars(tb.log_dir), _tb_scalars(ltb.log_dir)
    assert ours == theirs
    rows = read_metrics_csv(os.path.join(csv_logger.log_dir, "metrics.csv"))
    lrows = read_metrics_csv(os.path.join(lcsv.log_dir, "metrics.csv"))
    assert rows == lrows


def test_log_every_n_steps_is_honoured(tmp_path: pathlib.Path) -> None:
    _, _, tb, csv_logger = _fit(torchbolt, tmp_path, log_every_n_steps=3)
    steps = [s for s, _ in _tb_scalars(tb.log_dir)["a"]]
    assert steps == [s for s in range(2 * STEPS_PER_EPOCH) if (s + 1) % 3 == 0]
    _, _, tb0, _ = _fit(torchbolt, tmp_path / "zero", log_every_n_steps=0)
    assert "a" not in _tb_scalars(tb0.log_dir)  # step logging off; epoch metrics still logged
    assert "v" in _tb_scalars(tb0.log_dir)


def test_logger_true_means_tensorboard_in_default_root_dir(tmp_path: pathlib.Path) -> None:
    model = make_module(torchbolt)()
    trainer = Trainer(**trainer_kwargs(tmp_path, max_epochs=1, logger=True))
    trainer.fit(model)
    assert isinstance(trainer.logger, TensorBoardLogger)
    assert trainer.log_dir == os.path.join(tmp_path, "lightning_logs", "version_0")
    assert "a" in _tb_scalars(trainer.log_dir)
    ckpts = os.listdir(os.path.join(trainer.log_dir, "checkpoints"))
    assert ckpts == [f"epoch=0-step={STEPS_PER_EPOCH}.ckpt"]
    # a second Trainer gets the next version
    trainer2 = Trainer(**trainer_kwargs(tmp_path, max_epochs=1))
    trainer2.fit(make_module(torchbolt)())
    assert trainer2.log_dir == os.path.join(tmp_path, "lightning_logs", "version_1")
    none = Trainer(**trainer_kwargs(tmp_path, max_epochs=1, logger=False))
    assert none.logger is None and none.loggers == [] and none.log_dir == str(tmp_path)


def test_metrics_are_flushed_when_fit_fails(tmp_path: pathlib.Path) -> None:
    csv_logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1000)  # nothing would be written before the end

    class Recorder(Logger):
        def __init__(self) -> None:
            self.status: list[str] = []

        @property
        def name(self) -> str:
            return "rec"

        @property
        def version(self) -> int:
            return 0

        def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
            pass

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

        def finalize(self, status: str) -> None:
            self.status.append(status)

    recorder = Recorder()
    with pytest.raises(RuntimeError, match="planned failure"):
        _fit(torchbolt, tmp_path, loggers=[csv_logger, recorder], model_kwargs={"fail_at": 7})
    rows = read_metrics_csv(os.path.join(csv_logger.log_dir, "metrics.csv"))
    assert [int(r["step"]) for r in rows if r["a"]] == list(range(7))
    assert recorder.status == ["failed"]


def test_lr_monitor_in_fit(tmp_path: pathlib.Path) -> None:
    csv_logger = CSVLogger(tmp_path)
    _fit(torchbolt, tmp_path, loggers=[csv_logger], callbacks=[LearningRateMonitor(logging_interval="step")])
    rows = read_metrics_csv(os.path.join(csv_logger.log_dir, "metrics.csv"))
    lrs = [(int(r["step"]), float(r["lr-SGD"])) for r in rows if r.get("lr-SGD")]
    assert lrs == [(s, 0.1) for s in range(2 * STEPS_PER_EPOCH)]


def test_checkpoint_dir_follows_first_logger(tmp_path: pathlib.Path) -> None:
    mc = ModelCheckpoint()
    csv_logger = CSVLogger(tmp_path / "logs", name="exp", version="v7")
    _fit(torchbolt, tmp_path, loggers=[csv_logger], enable_checkpointing=True, callbacks=[mc])
    assert mc.dirpath == os.path.join(tmp_path, "logs", "exp", "v7", "checkpoints")
    assert os.listdir(mc.dirpath) == [f"epoch=1-step={2 * STEPS_PER_EPOCH}.ckpt"]


def test_model_graph_is_logged(tmp_path: pathlib.Path) -> None:
    from ckpt_models import torchbolt_classes

    model_cls, data_cls = torchbolt_classes()
    tb = TensorBoardLogger(tmp_path, log_graph=True)
    trainer = Trainer(**trainer_kwargs(tmp_path, max_epochs=1, logger=tb, enable_checkpointing=False))
    trainer.fit(model_cls(), datamodule=data_cls())
    acc = EventAccumulator(tb.log_dir)
    acc.Reload()
    graph = acc.Graph()
    assert any("Linear" in node.name or "linear" in node.op for node in graph.node)


@pytest.mark.lightning
@pytest.mark.parametrize("interval", [None, "step", "epoch"])
def test_lr_monitor_rows_match_lightning(tmp_path: pathlib.Path, interval: str | None) -> None:
    import lightning.pytorch as lpl
    from ckpt_models import make_classes, torchbolt_classes

    def run(pl: Any, classes: tuple[type, type], root: pathlib.Path) -> list[dict[str, str]]:
        model_cls, data_cls = classes
        pl.seed_everything(0)
        logger = pl.loggers.CSVLogger(root)
        monitor = pl.callbacks.LearningRateMonitor(logging_interval=interval, log_momentum=True,
                                                   log_weight_decay=True)
        trainer = pl.Trainer(**trainer_kwargs(root, logger=logger, callbacks=[monitor], enable_checkpointing=False))
        trainer.fit(model_cls(dropout=0.0), datamodule=data_cls())
        return read_metrics_csv(os.path.join(logger.log_dir, "metrics.csv"))

    ours = run(torchbolt, torchbolt_classes(), tmp_path / "t")
    theirs = run(lpl, make_classes(lpl), tmp_path / "l")
    columns = [c for c in theirs[0] if c.startswith("lr-")]
    assert columns and set(columns) <= set(ours[0])
    pick = lambda rows: [{c: r[c] for c in ("step", *columns)} for r in rows if any(r[c] for c in columns)]  # noqa: E731
    assert pick(ours) == pick(theirs)
