import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

a = L.Trainer(accelerator="gpuu", precision="fp16", strategy="dpp")
stop = EarlyStopping(monitor="val_loss", mode='minimum')
