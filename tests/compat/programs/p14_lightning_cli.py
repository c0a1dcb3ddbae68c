"""A LightningCLI script driven by a YAML config (`python p14_lightning_cli.py fit --config cli.yaml`)."""

import os

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CONFIG = """
seed_everything: 8
trainer:
  max_epochs: 2
  enable_progress_bar: false
  enable_checkpointing: false
  logger: false
model:
  hidden: 6
  lr: 0.05
data:
  batch_size: 8
"""


class CliModel(LightningModule):
    def __init__(self, hidden: int = 4, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class CliData(LightningDataModule):
    def __init__(self, batch_size: int = 4):
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self):
        x = torch.randn(32, 3, generator=torch.Generator().manual_seed(1))
        return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=self.batch_size)


if __name__ == "__main__":
    if not os.path.exists("cli.yaml"):
        with open("cli.yaml", "w") as f:
            f.write(CONFIG)
    LightningCLI(CliModel, CliData, args=["fit", "--config", "cli.yaml"])
