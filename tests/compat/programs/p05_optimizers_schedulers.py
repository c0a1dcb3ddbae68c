"""Two optimizers' worth of scheduling in one model: an lr_scheduler dict stepping every batch (OneCycleLR)
and LearningRateMonitor logging the learning rate, plus a second model with StepLR per epoch."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Regressor(pl.LightningModule):
    def __init__(self, schedule: str = "onecycle"):
        super().__init__()
        self.schedule = schedule
        self.model = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        if self.schedule == "onecycle":
            optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=16)
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "onecycle"}}
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.01, weight_decay=0.1)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)]


if __name__ == "__main__":
    pl.seed_everything(5)
    x = torch.randn(64, 6)
    loader = DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=16)
    for schedule in ("onecycle", "step"):
        trainer = pl.Trainer(max_epochs=4, callbacks=[LearningRateMonitor(logging_interval="step")],
                             logger=CSVLogger("logs", name=schedule), log_every_n_steps=1,
                             enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
        trainer.fit(Regressor(schedule), loader)
