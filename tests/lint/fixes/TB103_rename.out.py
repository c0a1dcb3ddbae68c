import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):  # the loss
        return self(batch).sum()

    def on_validation_epoch_end(self):
        pass

    def configure_optimizers(self):
        # Adam works well here
        return torch.optim.Adam(self.parameters(), lr=1e-3)
