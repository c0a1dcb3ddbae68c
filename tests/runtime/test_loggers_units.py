"""TensorBoardLogger and CSVLogger on their own: folders, versions, files read back with the real readers."""

from __future__ import annotations

import csv
import os
import pathlib
import sys
from argparse import Namespace

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchbolt.loggers import CSVLogger, DummyLogger, Logger, TensorBoardLogger


def _scalars(log_dir: str) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _read_csv(path: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_import_does_not_load_tensorboard() -> None:
    code = "import sys, torchbolt.loggers; print('tensorboard' in sys.modules, 'torch.utils.tensorboard' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_tensorboard_folders_and_versions(tmp_path: pathlib.Path) -> None:
    first = TensorBoardLogger(tmp_path)
    assert first.root_dir == os.path.join(tmp_path, "lightning_logs")
    assert first.log_dir == os.path.join(tmp_path, "lightning_logs", "version_0")
    first.log_metrics({"a": 1.0}, 0)
    first.finalize("success")
    second = TensorBoardLogger(tmp_path)
    assert second.version == 1
    named = TensorBoardLogger(tmp_path, name="exp", version="run-a", sub_dir="train")
    assert named.log_dir == os.path.join(tmp_path, "exp", "run-a", "train")
    flat = TensorBoardLogger(tmp_path, name=None, version=3)
    assert flat.log_dir == os.path.join(tmp_path, "version_3")
    assert (first.save_dir, first.name) == (str(tmp_path), "lightning_logs")


def test_tensorboard_scalars_read_back_exactly(tmp_path: pathlib.Path) -> None:
    logger = TensorBoardLogger(tmp_path, prefix="run")
    logged: dict[str, list[tuple[int, float]]] = {"run-loss": [], "run-acc": []}
    for step in range(7):
        loss = torch.tensor(1.0 / (step + 1))
        logger.log_metrics({"loss": loss, "acc": step * 0.1}, step)
        logged["run-loss"].append((step, float(loss)))
        logged["run-acc"].append((step, float(torch.tensor(step * 0.1))))
    logger.finalize("success")
    got = _scalars(logger.log_dir)
    for tag, values in logged.items():
        assert got[tag] == values  # float32 in the event file, compared bit for bit


def test_tensorboard_hparams_with_hp_metric(tmp_path: pathlib.Path) -> None:
    logger = TensorBoardLogger(tmp_path)
    logger.log_hyperparams({"lr": 0.01, "layers": [4, 8], "opt": {"name": "adam", "beta": 0.9},
                            "act": torch.nn.ReLU, "ns": Namespace(x=1)})
    logger.finalize("success")
    acc = EventAccumulator(logger.log_dir, size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    assert _scalars(logger.log_dir)["hp_metric"] == [(0, -1.0)]
    plugin = acc.PluginTagToContent("hparams")
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    hp = data.session_start_info.hparams
    assert hp["lr"].number_value == pytest.approx(0.01)
    assert hp["opt/name"].string_value == "adam"
    assert hp["opt/beta"].number_value == pytest.approx(0.9)
    assert hp["act"].string_value == "ReLU"
    assert hp["ns/x"].number_value == 1
    saved = yaml.safe_load(pathlib.Path(logger.log_dir, "hparams.yaml").read_text())
    assert saved["lr"] == 0.01 and saved["opt"] == {"name": "adam", "beta": 0.9}
    assert saved["act"] == "torch.nn.modules.activation.ReLU"


def test_tensorboard_no_default_hp_metric(tmp_path: pathlib.Path) -> None:
    logger = TensorBoardLogger(tmp_path, default_hp_metric=False)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"x": 1.0}, 0)
    logger.finalize("success")
    assert "hp_metric" not in _scalars(logger.log_dir)


def test_tensorboard_graph(tmp_path: pathlib.Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    model.example_input_array = torch.zeros(1, 3)
    logger = TensorBoardLogger(tmp_path, log_graph=True)
    logger.log_graph(model)
    logger.finalize("success")
    acc = EventAccumulator(logger.log_dir)
    acc.Reload()
    assert acc.Graph() is not None
    # without an input the graph is skipped with a warning, not an error
    model.example_input_array = None
    with pytest.warns(UserWarning, match="example_input_array"):
        TensorBoardLogger(tmp_path, log_graph=True).log_graph(model)


def test_tensorboard_rejects_non_scalar(tmp_path: pathlib.Path) -> None:
    logger = TensorBoardLogger(tmp_path)
    with pytest.raises(ValueError, match="one-element"):
        logger.log_metrics({"bad": torch.ones(3)}, 0)


def test_csv_layout_matches_lightning(tmp_path: pathlib.Path) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=1000)
    assert logger.log_dir == os.path.join(tmp_path, "lightning_logs", "version_0")
    logger.log_hyperparams(Namespace(lr=0.5, depth=3))
    logger.log_metrics({"train_loss": torch.tensor(0.75), "epoch": 0}, 0)
    logger.log_metrics({"train_loss": 0.5, "epoch": 0}, 1)
    logger.save()
    # a new column appears later: the file is rewritten with the wider, sorted header
    logger.log_metrics({"val_loss": 0.25, "epoch": 0}, 1)
    logger.finalize("success")
    header, rows = _read_csv(os.path.join(logger.log_dir, "metrics.csv"))
    assert header == ["epoch", "step", "train_loss", "val_loss"]
    assert rows == [
        {"epoch": "0", "step": "0", "train_loss": "0.75", "val_loss": ""},
        {"epoch": "0", "step": "1", "train_loss": "0.5", "val_loss": ""},
        {"epoch": "0", "step": "1", "train_loss": "", "val_loss": "0.25"},
    ]
    assert yaml.safe_load(pathlib.Path(logger.log_dir, "hparams.yaml").read_text()) == {"lr": 0.5, "depth": 3}


def test_csv_flushes_every_n_steps_and_on_failure(tmp_path: pathlib.Path) -> None:
    logger = CSVLogger(tmp_path, flush_logs_every_n_steps=3, prefix="p")
    path = os.path.join(logger.log_dir, "metrics.csv")
    logger.log_metrics({"m": 1.0}, 0)
    logger.log_metrics({"m": 2.0}, 1)
    assert not os.path.exists(path)
    logger.log_metrics({"m": 3.0}, 2)  # (2 + 1) % 3 == 0
    assert [r["p-m"] for r in _read_csv(path)[1]] == ["1.0", "2.0", "3.0"]
    logger.log_metrics({"m": 4.0}, 3)
    logger.finalize("failed")  # rows are written whatever the status
    assert [r["p-m"] for r in _read_csv(path)[1]] == ["1.0", "2.0", "3.0", "4.0"]


def test_csv_bad_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="flush_logs_every_n_steps"):
        CSVLogger(tmp_path, flush_logs_every_n_steps=0)
    with pytest.raises(TypeError, match="folder path"):
        CSVLogger(123)  # type: ignore[arg-type]


def test_custom_logger_needs_only_the_abstract_members() -> None:
    class Mine(Logger):
        def __init__(self) -> None:
            self.rows: list[tuple[dict[str, float], int | None]] = []

        @property
        def name(self) -> str:
            return "mine"

        @property
        def version(self) -> int:
            return 0

        def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
            self.rows.append((metrics, step))

        def log_hyperparams(self, params, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            pass

    mine = Mine()
    mine.log_metrics({"a": 1.0}, 3)
    mine.save()
    mine.finalize("success")
    mine.log_graph(torch.nn.Linear(1, 1))
    assert mine.rows == [({"a": 1.0}, 3)]
    assert (mine.save_dir, mine.log_dir, mine.group_separator) == (None, None, "/")

    class Incomplete(Logger):
        pass

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]
    dummy = DummyLogger()
    dummy.log_metrics({"a": 1.0}, 0)
    dummy.anything_at_all(1, 2)
