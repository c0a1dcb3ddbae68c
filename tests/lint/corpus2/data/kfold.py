from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Subset


class KFoldDataModule(LightningDataModule):
    def __init__(self, dataset, k: int = 5, fold: int = 0):
        super().__init__()
        self.dataset, self.k, self.fold = dataset, k, fold

    def setup(self, stage=None):
        indices = list(range(len(self.dataset)))
        val = indices[self.fold :: self.k]
        train = [i for i in indices if i not in set(val)]
        self.train_fold, self.val_fold = Subset(self.dataset, train), Subset(self.dataset, val)

    def train_dataloader(self):
        return DataLoader(self.train_fold, batch_size=16)

    def val_dataloader(self):
        return DataLoader(self.val_fold, batch_size=16)

    def teardown(self, stage):
        self.train_fold = self.val_fold = None
