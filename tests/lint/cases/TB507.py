import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

a = L.Trainer(accumulate_grad_batches=0)  # positive
b = L.Trainer(limit_train_batches=1.5)  # positive: a float must be a fraction
c = L.Trainer(devices=0)  # positive
d = L.Trainer(max_epochs=-5)  # positive
e = EarlyStopping(monitor="x", patience=-1)  # positive
f = L.Trainer(devices=-1, max_epochs=-1, limit_val_batches=10)  # near miss
g = L.Trainer(val_check_interval=0.25, num_sanity_val_steps=-1)  # near miss
