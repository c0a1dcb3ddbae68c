"""The built-in callbacks inside real `Trainer` runs: defaults, replacement, and what each one does."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchbolt as tb
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.callbacks.lambda_function import LambdaCallback
from torchbolt.callbacks.model_summary import ModelSummary
from torchbolt.callbacks.progress import ProgressBar, TQDMProgressBar
from torchbolt.callbacks.timer import Timer

QUIET = {"logger": False, "enable_checkpointing": False}


class Small(tb.LightningModule):
    def __init__(self, n_train: int = 8) -> None:
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        self.out = torch.nn.Linear(5, 1)
        self.n_train = n_train

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(x))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.mse_loss(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_mse", F.mse_loss(self(x), y), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        return DataLoader(TensorDataset(torch.randn(self.n_train * 2, 3, generator=g),
                                        torch.randn(self.n_train * 2, 1, generator=g)), batch_size=2)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(4, 3), torch.randn(4, 1)), batch_size=2)


def _of_type(trainer: Any, cls: type) -> list[Any]:
    return [cb for cb in trainer.callbacks if isinstance(cb, cls)]


def test_default_trainer_has_progress_bar_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torchbolt.trainer.trainer._rich_default", lambda: False)  # the default without rich
    trainer = tb.Trainer(max_epochs=2, default_root_dir=str(tmp_path), **QUIET)
    assert isinstance(trainer.progress_bar_callback, TQDMProgressBar)
    assert len(_of_type(trainer, ModelSummary)) == 1
    trainer.fit(Small())
    out = capsys.readouterr().out
    assert "encoder | Sequential" in out and "Trainable params" in out
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == 2
    assert epochs[0].startswith("Epoch 1/2: 8/8 [") and "it/s" in epochs[0]
    assert "train_loss=" in epochs[1] and "val_mse=" in epochs[1] and "loss=" in epochs[1]


def test_disabling_and_replacing_the_defaults(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trainer = tb.Trainer(max_epochs=1, default_root_dir=str(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False, **QUIET)
    assert trainer.progress_bar_callback is None
    assert not _of_type(trainer, ProgressBar) and not _of_type(trainer, ModelSummary)
    trainer.fit(Small())
    assert capsys.readouterr().out.strip() == ""

    bar = TQDMProgressBar(refresh_rate=4, leave=True)
    summary = ModelSummary(max_depth=-1)
    trainer = tb.Trainer(max_epochs=1, default_root_dir=str(tmp_path), callbacks=[bar, summary], **QUIET)
    assert _of_type(trainer, ProgressBar) == [bar] and _of_type(trainer, ModelSummary) == [summary]
    trainer.fit(Small())
    out = capsys.readouterr().out
    assert "encoder.0" in out  # max_depth=-1 lists nested layers
    assert summary.last_summary is not None and summary.last_summary.total == 3 * 5 + 5 + 5 + 1


def test_progress_bar_redraws_in_place_on_a_terminal(tmp_path: Path) -> None:
    bar = TQDMProgressBar()
    bar._stream, bar._tty = io.StringIO(), True
    trainer = tb.Trainer(max_epochs=2, default_root_dir=str(tmp_path), callbacks=[bar],
                         enable_model_summary=False, **QUIET)
    trainer.fit(Small())
    text = bar._stream.getvalue()
    assert "\r" in text and text.endswith("\n")
    final = text.rstrip("\n").split("\r")[-1]
    assert "Epoch 2/2" in final and "100%" in final and "8/8" in final and "val_mse=" in final


def test_progress_bar_in_validate_and_test(tmp_path: Path) -> None:
    bar = TQDMProgressBar()
    bar._stream, bar._tty = io.StringIO(), False
    trainer = tb.Trainer(default_root_dir=str(tmp_path), callbacks=[bar], **QUIET)
    trainer.validate(Small(), verbose=False)
    assert bar._stream.getvalue().startswith("Validation: 2/2 [") and "val_mse=" in bar._stream.getvalue()


def test_max_time_adds_a_timer_that_stops_fit(tmp_path: Path) -> None:
    trainer = tb.Trainer(max_epochs=50, max_time={"seconds": 0}, default_root_dir=str(tmp_path),
                         enable_progress_bar=False, enable_model_summary=False, **QUIET)
    timers = _of_type(trainer, Timer)
    assert len(timers) == 1 and timers[0].duration is not None and timers[0].duration.total_seconds() == 0
    trainer.fit(Small())
    assert trainer.global_step == 1  # the budget is checked after every step
    assert timers[0].time_elapsed("train") > 0


def test_timer_callback_with_epoch_interval(tmp_path: Path) -> None:
    timer = Timer(duration="00:00:00:00", interval="epoch", verbose=False)
    trainer = tb.Trainer(max_epochs=50, callbacks=[timer], default_root_dir=str(tmp_path),
                         enable_progress_bar=False, enable_model_summary=False, **QUIET)
    trainer.fit(Small())
    assert trainer.current_epoch == 1 and trainer.global_step == 8
    assert timer.time_elapsed("validate") > 0 and timer.time_elapsed("sanity_check") > 0


def test_lambda_callback_in_fit(tmp_path: Path) -> None:
    seen: dict[str, list[Any]] = {"batch_end": [], "setup": [], "epoch_end": []}
    cb = LambdaCallback(
        setup=lambda trainer, module, stage: seen["setup"].append(stage),
        on_train_batch_end=lambda trainer, module, outputs, batch, idx: seen["batch_end"].append(idx),
        on_train_epoch_end=lambda trainer, module: seen["epoch_end"].append(trainer.current_epoch),
    )
    trainer = tb.Trainer(max_epochs=2, callbacks=[cb], default_root_dir=str(tmp_path), enable_progress_bar=False,
                         enable_model_summary=False, **QUIET)
    trainer.fit(Small(n_train=3))
    assert seen == {"setup": ["fit"], "batch_end": [0, 1, 2, 0, 1, 2], "epoch_end": [0, 1]}
