import lightning as L
import torch


class CustomStepping(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 3)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).abs().mean()
        self.log("custom_loss", loss)
        return loss

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        # warm up the learning rate for the first 100 steps
        if self.trainer.global_step < 100:
            for group in optimizer.param_groups:
                group["lr"] = 1e-3 * (self.trainer.global_step + 1) / 100
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer):
        optimizer.zero_grad(set_to_none=True)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                            gradient_clip_algorithm=gradient_clip_algorithm)

    def lr_scheduler_step(self, scheduler, metric):
        scheduler.step()

    def backward(self, loss, *args, **kwargs):
        loss.backward(*args, **kwargs)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=1e-3)
        return [optimizer], [torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)]
