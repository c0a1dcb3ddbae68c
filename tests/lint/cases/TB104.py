import lightning as L
from lightning.pytorch.callbacks import Callback


class Sigs(L.LightningModule):
    def training_step(self):  # positive: no batch parameter
        pass

    def validation_step(self, batch, batch_idx, dataloader_idx, extra):  # positive: 4 required
        pass

    def setup(self):  # positive: no stage
        pass

    def on_train_batch_end(self, outputs):  # positive: the Trainer passes 3 arguments
        pass

    def on_train_epoch_start(self, epoch):  # positive: called with none
        pass

    def test_step(self, batch, batch_idx, dataloader_idx=0):  # near miss
        pass

    def predict_step(self, *args):  # near miss: *args takes anything
        pass

    def teardown(self, stage=None):  # near miss: 1.x style default is fine
        pass

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):  # near miss
        pass

    def on_test_batch_start(self, batch, batch_idx, dataloader_idx):  # positive: 1.x required index
        pass


class SigCallback(Callback):
    def setup(self, trainer, pl_module):  # positive: no stage
        pass

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # near miss
        pass

    def teardown(self, trainer, pl_module, **kwargs):  # near miss: stage arrives in **kwargs
        pass
