import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class Logs(L.LightningModule):
    def training_step(self, batch, batch_idx):
        self.log("train_loss", 1.0)  # near miss: allowed
        return self(batch).sum()

    def on_fit_start(self):
        self.log("start", 1.0)  # positive

    def setup(self, stage):
        self.log_dict({"a": 1.0})  # positive

    def predict_step(self, batch, batch_idx):
        self.log("pred", 1.0)  # positive
        return batch

    def on_train_epoch_end(self):
        self.log("epoch_metric", 2.0)  # near miss

    def helper(self):
        self.log("helper", 1.0)  # near miss: not a hook (called from allowed hooks)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class LoggingCallback(Callback):
    def on_train_end(self, trainer, pl_module):
        pl_module.log("end", 1.0)  # positive

    def on_validation_epoch_end(self, trainer, pl_module):
        pl_module.log("cb_val", 1.0)  # near miss
