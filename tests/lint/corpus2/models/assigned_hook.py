import torch
import lightning.pytorch as pl


def make_optimizers(module):
    return torch.optim.SGD(module.parameters(), lr=0.1)


class AssignedHook(pl.LightningModule):
    configure_optimizers = make_optimizers

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))

    def training_step(self, batch, batch_idx):
        return (self.w * batch).sum()
