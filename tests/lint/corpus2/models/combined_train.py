import torch
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as pl
from lightning.pytorch.utilities import CombinedLoader


class TwoSources(pl.LightningModule):
    """Two training sources combined; the batch is a dict keyed by source."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(4, 1)

    def train_dataloader(self):
        a = DataLoader(TensorDataset(torch.randn(12, 4)), batch_size=3)
        b = DataLoader(TensorDataset(torch.randn(24, 4)), batch_size=6)
        return CombinedLoader({"a": a, "b": b}, mode="max_size_cycle")

    def training_step(self, batch, batch_idx):
        loss = sum(self.head(batch[key][0]).mean() for key in ("a", "b"))
        self.log("combined_loss", loss, batch_size=3)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 1), "interval": "epoch"}}
