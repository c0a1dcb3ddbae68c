import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class OldSignatures(L.LightningModule):
    def training_step(self, batch, batch_idx, optimizer_idx):  # positive
        return batch

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_idx, optimizer_closure):  # positive
        optimizer.step(closure=optimizer_closure)

    def on_validation_epoch_end(self, outputs):  # positive
        pass

    def lr_scheduler_step(self, scheduler, metric):  # near miss: the 2.x signature
        scheduler.step()

    def on_train_epoch_end(self):
        opt = self.optimizers()
        self.toggle_optimizer(opt, 0)  # positive: removed argument
        self.untoggle_optimizer(opt)  # near miss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class OldCallback(Callback):
    def on_predict_epoch_end(self, trainer, pl_module, outputs):  # positive
        pass

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):  # near miss
        pass
