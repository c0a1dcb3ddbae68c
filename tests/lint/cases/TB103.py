import lightning as L
from lightning.pytorch.callbacks import Callback


class Typos(L.LightningModule):
    def training_stpe(self, batch, batch_idx):  # positive
        return batch

    def on_validation_epoch_ends(self):  # positive
        pass

    def configure_optimiser(self):  # positive
        return None

    def on_val_epoch_end(self):  # positive
        pass

    def validation_step_shared(self, batch):  # near miss: a helper extending a hook name
        return batch

    def shared_step(self, batch):  # near miss: unrelated helper
        return batch

    def _training_stpe(self):  # near miss: private helper
        pass

    def test_steps(self, batch):  # near miss: called explicitly below, so a helper
        return batch

    def test_step(self, batch, batch_idx):
        return self.test_steps(batch)


class TypoCallback(Callback):
    def on_train_epoch_ned(self, trainer, pl_module):  # positive (callback hook)
        pass

    def on_validation_epoch_end(self, trainer, pl_module):  # near miss: a real callback hook
        pass


class NotLightning:
    def training_stpe(self):  # near miss: not a Lightning class
        pass
