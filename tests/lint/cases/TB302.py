import lightning as L
import torch


class ForgotFlag(L.LightningModule):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()  # positive: stepped below under automatic optimization
        loss = self(batch).sum()
        self.manual_backward(loss)  # positive
        opt.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class ReadsLr(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def on_train_epoch_end(self):
        lr = self.optimizers().param_groups[0]["lr"]  # near miss: reading, not stepping
        self.log("lr", lr)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class ClassFlag(L.LightningModule):
    automatic_optimization = False  # near miss: class attribute

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        self.manual_backward(self(batch).sum())
        opt.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class InheritsFlag(ClassFlag):
    def training_step(self, batch, batch_idx):  # near miss: inherited flag
        self.manual_backward(self(batch).sum())
