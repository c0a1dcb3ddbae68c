import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class MultiVal(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.log("val_mse", torch.nn.functional.mse_loss(self.layer(x), y), add_dataloader_idx=True)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(8, 3), torch.randn(8, 1)), batch_size=4)

    def val_dataloader(self):
        return [DataLoader(TensorDataset(torch.randn(4, 3), torch.randn(4, 1)), batch_size=2) for _ in range(2)]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)
