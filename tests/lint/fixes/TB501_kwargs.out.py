import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

trainer = L.Trainer(
    max_epochs=3,  # three passes
    accelerator="cpu",
)
ckpt = ModelCheckpoint(monitor="val_loss")
