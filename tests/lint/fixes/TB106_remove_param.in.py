import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer, optimizer_idx):
        optimizer.zero_grad(set_to_none=True)

    def on_validation_epoch_end(self, outputs):  # 1.x signature
        self.log("done", 1.0)

    def lr_scheduler_step(self, scheduler, optimizer_idx, metric):
        scheduler.step(optimizer_idx)  # uses it: no automatic fix

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
