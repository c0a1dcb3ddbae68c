import time

from lightning.pytorch.callbacks import Callback


class BatchTimer(Callback):
    """Logs through the module parameter, whatever the hook calls it."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = time.monotonic()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        module.log("batch_time", time.monotonic() - self._start, on_step=True, on_epoch=False)

    def on_validation_epoch_end(self, trainer, model):
        model.log("val_epoch_marker", float(trainer.current_epoch))


class LearningRateLogger(Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        for i, group in enumerate(trainer.optimizers[0].param_groups):
            pl_module.log(f"lr_group_{i}", group["lr"])
