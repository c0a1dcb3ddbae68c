"""Subclasses of Lightning's demo classes: they inherit every hook the demo defines."""

import torch
from lightning.pytorch.demos.boring_classes import BoringModel, DemoModel


class LoggingBoringModel(BoringModel):
    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("boring_loss", out["loss"])
        return out

    def on_train_epoch_end(self):
        self.log("epoch_marker", float(self.current_epoch))


class SmallDemo(DemoModel):
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)
