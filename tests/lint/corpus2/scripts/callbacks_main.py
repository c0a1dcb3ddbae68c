from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import EarlyStopping, StochasticWeightAveraging

from callbacks.logging_callbacks import BatchTimer, LearningRateLogger
from callbacks.stateful import CountingCallback
from models.multi_loader import MultiLoader


def main():
    callbacks = [BatchTimer(), LearningRateLogger(), CountingCallback(), StochasticWeightAveraging(swa_lrs=1e-2),
                 EarlyStopping(monitor="batch_time", mode="min", check_on_train_epoch_end=True)]
    trainer = Trainer(callbacks=callbacks, max_epochs=3, check_val_every_n_epoch=1, reload_dataloaders_every_n_epochs=1)
    trainer.fit(MultiLoader())
