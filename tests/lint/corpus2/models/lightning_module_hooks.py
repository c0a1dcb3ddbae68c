import torch
import lightning.pytorch as pl


class HookHeavy(pl.LightningModule):
    """Many 2.x hooks with their current signatures."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)

    def on_fit_start(self):
        self.print("starting")

    def on_train_batch_start(self, batch, batch_idx):
        return None

    def on_before_backward(self, loss):
        pass

    def on_after_backward(self):
        pass

    def on_before_optimizer_step(self, optimizer):
        pass

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        optimizer.zero_grad(set_to_none=True)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).sum()
        self.log("hook_loss", loss, on_step=True, on_epoch=True)
        return loss

    def on_train_epoch_end(self):
        self.log("epoch_done", 1.0)

    def on_save_checkpoint(self, checkpoint):
        checkpoint["extra"] = 1

    def on_load_checkpoint(self, checkpoint):
        self.extra = checkpoint.get("extra")

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step()

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return [optimizer], [torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.9)]

    def configure_callbacks(self):
        from lightning.pytorch.callbacks import ModelCheckpoint

        return [ModelCheckpoint(monitor="hook_loss_epoch")]
