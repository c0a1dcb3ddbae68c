"""LightningDataModule: from_datasets, hyper-parameters, state in checkpoints, and its place in a run."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchbolt as tb
from _tb_helpers import Tiny, data, trainer
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler


def test_from_datasets_builds_loaders() -> None:
    dm = tb.LightningDataModule.from_datasets(train_dataset=data(16), val_dataset=[data(8), data(8)],
                                              test_dataset=data(8), batch_size=4)
    train = dm.train_dataloader()
    assert isinstance(train, DataLoader) and isinstance(train.sampler, RandomSampler) and train.batch_size == 4
    val = dm.val_dataloader()
    assert len(val) == 2 and isinstance(val[0].sampler, SequentialSampler)

    class TwoVal(Tiny):
        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            super().validation_step(batch, batch_idx)

    model = TwoVal()
    t = trainer(max_epochs=1)
    t.fit(model, datamodule=dm)
    assert t.num_training_batches == 4 and t.num_val_batches == [2, 2]
    assert t.datamodule is dm and dm.trainer is t
    assert t.test(model, datamodule=dm, verbose=False)[0]["test_loss"] >= 0


class Stateful(tb.LightningDataModule):
    def __init__(self, batch_size: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.epochs_seen = 0

    def train_dataloader(self) -> Any:
        self.epochs_seen += 1
        return DataLoader(data(16), batch_size=self.hparams.batch_size)

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_seen": self.epochs_seen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs_seen = state_dict["epochs_seen"]


def test_state_and_hparams_go_into_checkpoints_and_come_back(tmp_path: Any) -> None:
    dm = Stateful(batch_size=8)
    t = trainer(max_epochs=2, reload_dataloaders_every_n_epochs=1)
    t.fit(Tiny(), datamodule=dm)
    path = tmp_path / "dm.ckpt"
    t.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["datamodule_hyper_parameters"] == {"batch_size": 8}
    assert checkpoint["Stateful"] == {"epochs_seen": 2}
    restored = Stateful.load_from_checkpoint(path)
    assert restored.hparams.batch_size == 8 and restored.epochs_seen == 2

    resumed_dm = Stateful(batch_size=8)
    trainer(max_epochs=3).fit(Tiny(), datamodule=resumed_dm, ckpt_path=str(path))
    assert resumed_dm.epochs_seen == 3  # restored 2, then one more training dataloader request


def test_datamodule_passed_positionally_and_hparams_merged_for_loggers() -> None:
    class Logger:
        log_dir = None

        def __init__(self) -> None:
            self.params: list[dict[str, Any]] = []

        def log_metrics(self, metrics: Any, step: Any = None) -> None: ...

        def log_hyperparams(self, params: Any) -> None:
            self.params.append(dict(params))

        def save(self) -> None: ...

        def finalize(self, status: str) -> None: ...

    class WithHp(Tiny):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__(lr)
            self.save_hyperparameters()

    logger = Logger()
    t = tb.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False)
    t.fit(WithHp(), Stateful(batch_size=8))
    assert logger.params == [{"batch_size": 8, "lr": 0.1}]


def test_missing_dataloader_hook_message() -> None:
    class Empty(tb.LightningDataModule):
        pass

    with pytest.raises(Exception, match="train_dataloader"):
        trainer().fit(Tiny(), datamodule=Empty())
