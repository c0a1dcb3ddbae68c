import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class Old(L.LightningModule):
    def validation_step(self, batch, batch_idx):
        return batch

    def validation_epoch_end(self, outputs):  # positive (raises in 2.x)
        pass

    def training_step_end(self, step_output):  # positive (silently ignored)
        return step_output

    def on_epoch_end(self):  # positive
        pass

    def on_pretrain_routine_start(self):  # positive
        pass

    def on_validation_epoch_end(self):  # near miss: the 2.x hook
        pass

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class OldCallback(Callback):
    def on_keyboard_interrupt(self, trainer, pl_module):  # positive
        pass

    def on_batch_start(self, trainer, pl_module):  # positive
        pass

    def on_exception(self, trainer, pl_module, exception):  # near miss
        pass


class Plain:
    def training_epoch_end(self, outputs):  # near miss: not a Lightning class
        pass
