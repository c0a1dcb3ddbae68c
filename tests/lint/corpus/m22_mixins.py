import torch
from lightning.pytorch import LightningModule


class OptimizerMixin:
    """Provides configure_optimizers to any module that mixes it in."""

    learning_rate = 1e-3

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


class Mixed(OptimizerMixin, LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def forward(self, x):
        return x


def make_optimizer(module):
    return torch.optim.SGD(module.parameters(), lr=0.01)


class Aliased(LightningModule):
    """Hooks bound by assignment, and automatic optimization chosen at run time."""

    configure_optimizers = make_optimizer

    def __init__(self, manual: bool = False):
        super().__init__()
        self.automatic_optimization = not manual

    def training_step(self, batch, batch_idx):
        loss = self(batch).sum()
        if not self.automatic_optimization:
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
            return None
        return loss

    def forward(self, x):
        return x
