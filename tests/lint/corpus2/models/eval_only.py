"""A wrapper used only for evaluation: it has no training_step and is never passed to fit."""

import torch
import lightning.pytorch as pl


class Model(pl.LightningModule):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(-1) == y).float().mean())

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self.net(x).argmax(-1) == y).float().mean())

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self.net(batch[0]).argmax(-1)
