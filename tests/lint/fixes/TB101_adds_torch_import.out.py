"""A module without a torch import."""

from __future__ import annotations

import torch
import lightning as L


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)
