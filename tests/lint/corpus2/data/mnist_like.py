import torch
from torch.utils.data import DataLoader, TensorDataset, random_split
import lightning.pytorch as pl


class RandomImageDataModule(pl.LightningDataModule):
    def __init__(self, batch_size: int = 32, num_classes: int = 10):
        super().__init__()
        self.save_hyperparameters()
        self.num_classes = num_classes

    def prepare_data(self):
        pass

    def setup(self, stage: str):
        data = TensorDataset(torch.randn(256, 1, 28, 28), torch.randint(0, self.num_classes, (256,)))
        self.train_set, self.val_set = random_split(data, [200, 56])
        self.test_set = data

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size)

    def test_dataloader(self):
        return DataLoader(self.test_set, batch_size=self.hparams.batch_size)

    def state_dict(self):
        return {"batch_size": self.hparams.batch_size}

    def load_state_dict(self, state_dict):
        self.hparams.batch_size = state_dict["batch_size"]
