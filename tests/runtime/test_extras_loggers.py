"""MLFlowLogger against a real local MLflow file store (read back with mlflow's own client), several
loggers at once, and WandbLogger/CometLogger: the missing-package hint, and their logic against fake
`wandb`/`comet_ml` modules (the real packages are not test dependencies: they need accounts or network)."""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any

import pytest
import torch
import torchbolt as tb
import torchbolt.loggers as tbl
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.callbacks import ModelCheckpoint


class _Net(tb.LightningModule):
    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(16, 4)), batch_size=4)

    val_dataloader = train_dataloader


def _fit(tmp_path: Any, logger: Any, **kw: Any) -> tb.Trainer:
    trainer = tb.Trainer(default_root_dir=str(tmp_path), logger=logger, max_epochs=2, log_every_n_steps=1,
                         enable_progress_bar=False, enable_model_summary=False, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_Net())
    return trainer


# --------------------------------------------------------------------------------------------------
# MLflow
# --------------------------------------------------------------------------------------------------
def test_mlflow_file_store_read_back_with_mlflows_client(tmp_path: Any) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"file:{tmp_path / 'mlruns'}"
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpts", monitor="val_loss", save_top_k=1)
    logger = tbl.MLFlowLogger(experiment_name="exp", run_name="first", tracking_uri=uri, log_model=True)
    _fit(tmp_path, logger, callbacks=[ckpt])
    client = MlflowClient(uri)
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["lr"] == "0.1"
    assert run.data.tags["mlflow.runName"] == "first"
    history = client.get_metric_history(logger.run_id, "train_loss")
    assert [m.step for m in history] == list(range(8))
    assert {"val_loss", "epoch"} <= set(run.data.metrics)
    exp = client.get_experiment_by_name("exp")
    assert exp is not None and exp.experiment_id == logger.name
    # the best checkpoint was uploaded at the end, with its metadata
    folder = tbl.mlflow.Path(ckpt.best_model_path).stem
    files = {f.path for f in client.list_artifacts(logger.run_id, folder)}
    assert {f"{folder}/{tbl.mlflow.Path(ckpt.best_model_path).name}", f"{folder}/metadata.yaml",
            f"{folder}/aliases.txt"} <= files

    # resume: a new logger with the run id appends to the same run
    again = tbl.MLFlowLogger(tracking_uri=uri, run_id=logger.run_id)
    again.log_metrics({"extra": 1.0}, step=99)
    again.finalize("success")
    assert client.get_run(logger.run_id).data.metrics["extra"] == 1.0
    assert again.name == logger.name


def test_mlflow_default_store_is_local_file_under_save_dir(tmp_path: Any, monkeypatch: Any) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = tbl.MLFlowLogger(save_dir=str(tmp_path / "store"), tracking_uri=None)
    assert logger.save_dir == str(tmp_path / "store")
    logger.log_metrics({"a/b c": 1.0, "bad%name": 2.0}, step=0)
    from mlflow.tracking import MlflowClient

    metrics = MlflowClient(f"file:{tmp_path / 'store'}").get_run(logger.run_id).data.metrics
    assert metrics == {"a/b c": 1.0, "badname": 2.0}


def test_tensorboard_csv_and_mlflow_at_once(tmp_path: Any) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    uri = f"file:{tmp_path / 'mlruns'}"
    loggers = [tbl.TensorBoardLogger(tmp_path / "tb"), tbl.CSVLogger(tmp_path / "csv"),
               tbl.MLFlowLogger(tracking_uri=uri)]
    trainer = _fit(tmp_path, loggers)
    assert trainer.loggers == loggers and trainer.logger is loggers[0]
    csv_text = (tmp_path / "csv" / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "train_loss" in csv_text.splitlines()[0]
    events = list((tmp_path / "tb" / "lightning_logs" / "version_0").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    history = MlflowClient(uri).get_metric_history(loggers[2].run_id, "train_loss")
    assert len(history) == 8


# --------------------------------------------------------------------------------------------------
# Missing packages: a hint at construction
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,package", [("MLFlowLogger", "mlflow"), ("WandbLogger", "wandb"),
                                         ("CometLogger", "comet-ml")])
def test_missing_package_gives_install_hint(monkeypatch: Any, cls: str, package: str) -> None:
    module = {"mlflow": "mlflow", "wandb": "wandb", "comet-ml": "comet_ml"}[package]
    monkeypatch.setitem(sys.modules, module, None)  # makes the import machinery report it missing
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else real(name, *a))
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ModuleNotFoundError, match=f"pip install {package}"):
        getattr(tbl, cls)()


# --------------------------------------------------------------------------------------------------
# wandb and comet_ml logic against fake modules
# --------------------------------------------------------------------------------------------------
class _FakeRun:
    def __init__(self, **init: Any) -> None:
        self.init = init
        self.id = init.get("id") or "run123"
        self.logged: list[dict[str, Any]] = []
        self.config = types.SimpleNamespace(values={}, update=lambda d, allow_val_change: self.config.values.update(d))
        self.artifacts: list[tuple[Any, list[str]]] = []
        self.defined: list[tuple[Any, ...]] = []

    def define_metric(self, *args: Any, **kwargs: Any) -> None:
        self.defined.append(args)

    def log(self, data: dict[str, Any]) -> None:
        self.logged.append(data)

    def log_artifact(self, artifact: Any, aliases: list[str]) -> None:
        self.artifacts.append((artifact, aliases))


class _FakeArtifact:
    def __init__(self, name: str, type: str, metadata: dict[str, Any]) -> None:  # noqa: A002
        self.name, self.type, self.metadata, self.files = name, type, metadata, []

    def add_file(self, path: str, name: str, policy: str) -> None:
        self.files.append((path, name, policy))


@pytest.fixture
def fake_wandb(monkeypatch: Any) -> Any:
    module = types.ModuleType("wandb")
    module.run = None  # type: ignore[attr-defined]
    module.init = lambda **kw: _FakeRun(**kw)  # type: ignore[attr-defined]
    module.Artifact = _FakeArtifact  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def test_wandb_logger_logs_and_uploads_checkpoints(tmp_path: Any, fake_wandb: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpts", monitor="val_loss", save_top_k=1)
    logger = tbl.WandbLogger(project="proj", save_dir=str(tmp_path), log_model=True, prefix="p")
    _fit(tmp_path, logger, callbacks=[ckpt])
    run = logger.experiment
    assert run.init["project"] == "proj" and run.init["resume"] == "allow"
    assert run.config.values["lr"] == 0.1
    steps = [d["trainer/global_step"] for d in run.logged if "p-train_loss" in d]
    assert steps == list(range(8))
    assert len(run.artifacts) == 1
    artifact, aliases = run.artifacts[0]
    assert aliases == ["latest", "best"] and artifact.name == "model-run123" and artifact.type == "model"
    assert artifact.files[0][1] == "model.ckpt" and artifact.metadata["ModelCheckpoint"]["monitor"] == "val_loss"
    assert logger.version == "run123" and logger.name == "proj"


def test_wandb_offline_mode_and_model_upload_conflict(tmp_path: Any, fake_wandb: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="offline mode"):
        tbl.WandbLogger(offline=True, log_model=True)
    logger = tbl.WandbLogger(offline=True, save_dir=str(tmp_path))
    logger.log_metrics({"a": 1.0}, step=3)
    import os

    assert os.environ["WANDB_MODE"] == "offline"
    assert logger.experiment.logged == [{"a": 1.0, "trainer/global_step": 3}]


def test_comet_logger_against_fake_module(monkeypatch: Any) -> None:
    calls: dict[str, Any] = {}

    class Experiment:
        project_name = "proj"

        def get_key(self) -> str:
            return "key1"

        def log_other(self, *a: Any) -> None:
            calls["other"] = a

        def log_parameters(self, params: Any, nested_support: bool) -> None:
            calls["params"] = params

        def log_metrics(self, metrics: Any, step: Any, epoch: Any, prefix: Any) -> None:
            calls.setdefault("metrics", []).append((metrics, step, epoch, prefix))

        def flush(self) -> None:
            calls["flushed"] = True

    module = types.ModuleType("comet_ml")
    module.ExperimentConfig = lambda **kw: types.SimpleNamespace(**kw)  # type: ignore[attr-defined]
    module.start = lambda **kw: calls.setdefault("start", kw) and Experiment()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "comet_ml", module)
    logger = tbl.CometLogger(project="proj", online=False, prefix="x", offline_directory="/tmp/c")
    assert calls["start"]["online"] is False and logger.version == "key1" and logger.save_dir == "/tmp/c"
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"loss": torch.tensor(0.5), "epoch": 1}, step=4)
    logger.finalize("success")
    assert calls["params"] == {"lr": 0.1}
    assert calls["metrics"] == [({"loss": 0.5}, 4, 1, "x")] and calls["flushed"]
