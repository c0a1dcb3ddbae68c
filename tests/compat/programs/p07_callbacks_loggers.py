"""Callbacks and loggers configured in code: EarlyStopping, ModelCheckpoint (top-k and last), a custom
Callback, CSVLogger and TensorBoardLogger together."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.types import STEP_OUTPUT, OptimizerLRScheduler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class EpochCounter(Callback):
    def __init__(self):
        self.epochs = 0

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs += 1
        pl_module.log("epochs_seen", float(self.epochs))

    def state_dict(self):
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict):
        self.epochs = state_dict["epochs"]


class Net(pl.LightningModule):
    def __init__(self, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.body = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))

    def step(self, batch):
        x, y = batch
        return nn.functional.cross_entropy(self.body(x), y)

    def training_step(self, batch, batch_idx) -> STEP_OUTPUT:
        loss = self.step(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.step(batch), prog_bar=True)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


if __name__ == "__main__":
    pl.seed_everything(1234)
    x = torch.randn(80, 5)
    y = (x[:, 0] + x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=1, min_delta=0.05, mode="min"),
        ModelCheckpoint(monitor="val_loss", save_top_k=2, save_last=True),
        EpochCounter(),
    ]
    loggers = [CSVLogger("logs"), TensorBoardLogger("tb_logs", name="net")]
    trainer = pl.Trainer(max_epochs=8, callbacks=callbacks, logger=loggers, log_every_n_steps=2,
                         enable_progress_bar=False)
    trainer.fit(Net(), train, val)
