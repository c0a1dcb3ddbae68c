from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset, random_split


class RandomDataModule(L.LightningDataModule):
    def __init__(self, batch_size: int = 8):
        super().__init__()
        self.batch_size = batch_size
        self.seen_epochs = 0

    def prepare_data(self):
        torch.manual_seed(0)

    def setup(self, stage: str):
        data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
        self.train_set, self.val_set = random_split(data, [48, 16])

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def teardown(self, stage: str):
        self.seen_epochs += 1

    def state_dict(self) -> dict[str, Any]:
        return {"seen_epochs": self.seen_epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seen_epochs = state_dict["seen_epochs"]

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        x, y = batch
        return x.to(device), y.to(device)
