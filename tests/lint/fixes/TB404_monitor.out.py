import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        loss = self(batch).sum()
        self.log('train_loss', loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters())
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": 'val_loss'}}


callbacks = [ModelCheckpoint(monitor="val_loss", mode="min"), EarlyStopping(monitor='train_loss')]
