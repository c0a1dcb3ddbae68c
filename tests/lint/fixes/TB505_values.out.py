import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

a = L.Trainer(accelerator="gpu", precision="16-mixed", strategy="ddp")
stop = EarlyStopping(monitor="val_loss", mode='min')
