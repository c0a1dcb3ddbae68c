"""Two datasets trained together through CombinedLoader (max_size_cycle) and validated sequentially."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TwoSources(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        (xa, ya), (xb, yb) = batch["a"], batch["b"]
        loss = nn.functional.mse_loss(self.layer(xa), ya) + nn.functional.mse_loss(self.layer(xb), yb)
        self.log("loss", loss)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    pl.seed_everything(9)
    a = TensorDataset(torch.randn(40, 3), torch.randn(40, 1))
    b = TensorDataset(torch.randn(24, 3), torch.randn(24, 1))
    train = CombinedLoader({"a": DataLoader(a, batch_size=8), "b": DataLoader(b, batch_size=8)}, "max_size_cycle")
    val = CombinedLoader([DataLoader(a, batch_size=20), DataLoader(b, batch_size=12)], "sequential")
    trainer = pl.Trainer(max_epochs=2, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False)
    trainer.fit(TwoSources(), train, val)
