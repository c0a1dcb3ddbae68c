import lightning as L
import pytorch_lightning as pl
import torch

from base_for_tb101 import ExternalBase  # not in the workspace: inherited hooks unknown


class Missing(L.LightningModule):  # positive
    def training_step(self, batch, batch_idx):
        return self(batch).sum()


class MissingPl(pl.LightningModule):  # positive, other import style
    def training_step(self, batch, batch_idx):
        return self(batch).sum()


class HasIt(L.LightningModule):  # near miss: defines it
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Inherits(HasIt):  # near miss: inherited from a workspace class
    def training_step(self, batch, batch_idx):
        return self(batch).mean()


class Manual(L.LightningModule):  # near miss: manual optimization is outside this rule
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        pass


class Unknown(ExternalBase, L.LightningModule):  # near miss: a base we cannot see may define it
    def training_step(self, batch, batch_idx):
        return self(batch).sum()


class EvalOnly(L.LightningModule):  # near miss: no training_step
    def validation_step(self, batch, batch_idx):
        pass
