import torch
import lightning.pytorch as pl


class OptimizerMixin:
    lr = 3e-4

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


class WithMixin(OptimizerMixin, pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(10, 10)

    def training_step(self, batch, batch_idx):
        return self.net(batch).sum()
