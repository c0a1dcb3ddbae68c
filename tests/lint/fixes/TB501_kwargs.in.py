import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

trainer = L.Trainer(
    max_epoch=3,  # three passes
    acelerator="cpu",
)
ckpt = ModelCheckpoint(monitr="val_loss")
