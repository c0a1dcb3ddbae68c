import lightning as L
import torch


class DoubleStep(L.LightningModule):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()  # positive
        loss = self(batch).sum()
        loss.backward()  # positive
        opt.step()  # positive
        self.lr_schedulers().step()  # near miss: a scheduler, not the optimizer
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Manual(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):  # near miss: manual optimization
        opt = self.optimizers()
        opt.zero_grad()
        loss = self(batch).sum()
        self.manual_backward(loss)
        opt.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Hooked(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        optimizer.step(closure=optimizer_closure)  # near miss: the optimizer_step hook

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
