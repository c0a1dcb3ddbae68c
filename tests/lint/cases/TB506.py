import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

a = L.Trainer(max_epochs="10")  # positive
b = L.Trainer(enable_progress_bar="False")  # positive
c = L.Trainer(logger="tensorboard")  # positive
d = ModelCheckpoint(save_top_k=1.5)  # positive
e = L.Trainer(max_epochs=10, gradient_clip_val=1)  # near miss: an int where a float is accepted
f = L.Trainer(max_time="00:01:00:00", limit_train_batches=0.5)  # near miss
