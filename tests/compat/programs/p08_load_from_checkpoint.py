"""Train, then restore the best checkpoint with `load_from_checkpoint` and evaluate it."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class LitModel(pl.LightningModule):
    def __init__(self, in_features: int = 3, hidden: int = 8, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self(x), y))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


if __name__ == "__main__":
    pl.seed_everything(21)
    x = torch.randn(64, 3)
    data = TensorDataset(x, (x ** 2).sum(dim=1, keepdim=True))
    train, val = DataLoader(data, batch_size=16, shuffle=True), DataLoader(data, batch_size=32)
    checkpoint = ModelCheckpoint(monitor="val_loss", save_top_k=1)
    trainer = pl.Trainer(max_epochs=3, callbacks=[checkpoint], enable_progress_bar=False, logger=False)
    trainer.fit(LitModel(hidden=16), train, val)

    restored = LitModel.load_from_checkpoint(checkpoint.best_model_path)
    assert restored.hparams.hidden == 16
    restored.eval()
    with torch.no_grad():
        print("prediction", restored(torch.ones(1, 3)).item())
    pl.Trainer(enable_progress_bar=False, logger=False).test(restored, val)
