import torch
from torch.utils.data import DataLoader, TensorDataset
from lightning.pytorch import LightningModule


class MultiLoader(LightningModule):
    """Several validation and test dataloaders; the step takes dataloader_idx."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss)
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log("val_mse", torch.nn.functional.mse_loss(self.layer(x), y), add_dataloader_idx=True)

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log(f"test_mse_{dataloader_idx}", torch.nn.functional.mse_loss(self.layer(x), y), add_dataloader_idx=False)

    def _loader(self):
        return DataLoader(TensorDataset(torch.randn(16, 8), torch.randn(16, 1)), batch_size=4)

    def train_dataloader(self):
        return self._loader()

    def val_dataloader(self):
        return [self._loader(), self._loader()]

    def test_dataloader(self):
        return {"clean": self._loader(), "noisy": self._loader()}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)
