from lightning import LightningModule
from lightning.pytorch.utilities import grad_norm
import torch


class GradNorms(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(5, 5)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).sum()

    def on_before_optimizer_step(self, optimizer):
        self.log_dict(grad_norm(self, norm_type=2))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
