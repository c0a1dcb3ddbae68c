import lightning as L
import torch


class NoReturn(L.LightningModule):
    def training_step(self, batch, batch_idx):  # positive
        loss = self(batch).sum()
        self.log("loss", loss)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class ReturnsNone(L.LightningModule):
    def training_step(self, batch, batch_idx):  # positive: only `return None`
        if batch is None:
            return None
        self.log("x", 1.0)
        return

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Returns(L.LightningModule):
    def training_step(self, batch, batch_idx):  # near miss: returns in a branch
        if batch is None:
            return None
        return self(batch).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class ManualOpt(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):  # near miss: manual optimization returns nothing
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(self(batch).sum())
        opt.step()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Abstract(L.LightningModule):
    def training_step(self, batch, batch_idx):  # near miss: an abstract stub
        raise NotImplementedError
