import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor

a = L.Trainer(accelerator="gpuu")  # positive
b = L.Trainer(precision="fp16")  # positive: alias spelling
c = L.Trainer(strategy="dpp")  # positive
d = EarlyStopping(monitor="val_loss", mode="minimum")  # positive
e = LearningRateMonitor(logging_interval="epochs")  # positive
f = L.Trainer(accelerator="mps", devices="auto")  # near miss
g = L.Trainer(devices="0,1")  # near miss: open choices
h = L.Trainer(gradient_clip_algorithm="value")  # near miss
