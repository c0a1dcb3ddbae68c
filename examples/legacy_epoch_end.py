"""A Lightning-1.x-style module: `validation_epoch_end(outputs)` and `test_epoch_end(outputs)`.

Most tutorials still show this style. Lightning 2.x refuses to run it; torchbolt collects the step
outputs, calls these hooks at epoch end and warns once with the 2.x replacement
(`on_validation_epoch_end` plus outputs collected on `self`).

    torchbolt fit examples/legacy_epoch_end.py --trainer.max_epochs 5
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchbolt as pl
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def two_blobs(n: int, seed: int) -> TensorDataset:
    """Two overlapping Gaussian clouds in 2-D, labelled 0 and 1 (deterministic for a seed)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    centers = torch.tensor([[-1.0, -0.5], [1.0, 0.5]])
    points = centers[labels] + 0.8 * torch.randn(n, 2, generator=g)
    return TensorDataset(points, labels)


class LegacyClassifier(pl.LightningModule):
    """Logistic regression on two blobs, written the 1.x way (dataloaders on the module, *_epoch_end)."""

    def __init__(self, lr: float = 0.1, num_samples: int = 512) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.linear = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        return {"loss": F.cross_entropy(logits, y), "correct": (logits.argmax(1) == y).sum(), "count": len(y)}

    def validation_epoch_end(self, outputs):
        correct = sum(int(o["correct"]) for o in outputs)
        count = sum(o["count"] for o in outputs)
        self.log("val_loss", torch.stack([o["loss"] for o in outputs]).mean(), prog_bar=True)
        self.log("val_acc", correct / count, prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        return (self(x).argmax(1) == y).float()

    def test_epoch_end(self, outputs):
        self.log("test_acc", torch.cat(outputs).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self):
        return DataLoader(two_blobs(self.hparams.num_samples, seed=0), batch_size=32, shuffle=True)

    def val_dataloader(self):
        return DataLoader(two_blobs(256, seed=1), batch_size=64)

    def test_dataloader(self):
        return DataLoader(two_blobs(256, seed=2), batch_size=64)
