import lightning as L
import torch


class Levels(L.LightningModule):
    def training_step(self, batch, batch_idx):
        self.log("loss", 1.0, on_step=True, on_epoch=True)  # near miss: both allowed here
        return self(batch).sum()

    def on_train_epoch_end(self):
        self.log("epoch_loss", 1.0, on_step=True)  # positive
        self.log("ok", 1.0, on_epoch=True)  # near miss

    def on_validation_epoch_start(self):
        self.log("x", 1.0, on_epoch=False)  # positive

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0, on_step=True)  # near miss: allowed in validation_step

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
