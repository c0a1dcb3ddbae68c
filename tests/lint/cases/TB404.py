import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint


class Model(L.LightningModule):
    def training_step(self, batch, batch_idx):
        loss = self(batch).sum()
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0)
        self.log(f"val_acc_{batch_idx % 2}", 1.0)

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters())
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_los"}}  # positive


callbacks = [
    ModelCheckpoint(monitor="val_lss"),  # positive
    EarlyStopping(monitor="validation_loss"),  # positive
    EarlyStopping("train_los"),  # positive (positional)
    ModelCheckpoint(monitor="val_loss"),  # near miss
    ModelCheckpoint(monitor="train_loss_epoch"),  # near miss: forked name
    ModelCheckpoint(monitor="val_acc_1"),  # near miss: matches the f-string name
    ModelCheckpoint(monitor="step"),  # near miss: always available
]
