import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint


def trainers(ckpt, flag):
    configured = pl.Trainer(checkpoint_callback=ModelCheckpoint(monitor="val_loss", save_top_k=2), max_epochs=5)
    off = pl.Trainer(checkpoint_callback=False)
    beside = pl.Trainer(checkpoint_callback=ModelCheckpoint(), callbacks=[LearningRateMonitor()])
    by_name = pl.Trainer(checkpoint_callback=ckpt)
    run_time = pl.Trainer(checkpoint_callback=flag)
    return configured, off, beside, by_name, run_time
