import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

trainer = L.Trainer(max_epoch=3, acelerator="cpu")  # positive x2
ckpt = ModelCheckpoint(monitr="val_loss", save_top_k=1)  # positive
stop = EarlyStopping(monitor="val_loss", patience=3, paitence=4)  # positive
logger = CSVLogger("logs", flush_every=10)  # positive (no close name)
ok = L.Trainer(max_epochs=3, accelerator="cpu", **{"devices": 1})  # near miss
other = SomethingElse(max_epoch=3)  # near miss: not Lightning


class M(L.LightningModule):
    def training_step(self, batch, batch_idx):
        self.log("loss", 1.0, prog_bar=True, on_epok=True)  # positive: self.log keyword
        return batch
