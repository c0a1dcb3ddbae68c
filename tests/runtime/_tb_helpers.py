"""Small models and data for R1's runtime tests (module name avoids clashing with other test helpers)."""

from __future__ import annotations

from typing import Any

import torch
import torchbolt as tb
from torch.utils.data import DataLoader, TensorDataset

QUIET: dict[str, Any] = dict(logger=False, enable_progress_bar=False, enable_checkpointing=False,
                             enable_model_summary=False)


def data(n: int = 32, features: int = 4, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x.sum(dim=1, keepdim=True) > 0).float()
    return TensorDataset(x, y)


def loader(n: int = 32, batch_size: int = 8, shuffle: bool = False, seed: int = 0) -> DataLoader[Any]:
    return DataLoader(data(n, seed=seed), batch_size=batch_size, shuffle=shuffle)


class Tiny(tb.LightningModule):
    """Linear regression-ish model: logs train_loss (step) and val_loss (epoch)."""

    def __init__(self, lr: float = 0.1) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def trainer(**kwargs: Any) -> tb.Trainer:
    options = {**QUIET, "max_epochs": 1, "num_sanity_val_steps": 0}
    options.update(kwargs)
    return tb.Trainer(**options)
