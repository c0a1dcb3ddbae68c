from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from models.boring_subclass import LoggingBoringModel

trainer = Trainer(fast_dev_run=True, callbacks=[ModelCheckpoint(monitor="boring_loss")])
trainer.fit(LoggingBoringModel())
