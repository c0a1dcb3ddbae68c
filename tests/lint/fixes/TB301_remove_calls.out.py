import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        loss = self(batch).sum()
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
