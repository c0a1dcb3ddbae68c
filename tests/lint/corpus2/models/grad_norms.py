import torch
import lightning.pytorch as pl
from lightning.pytorch.utilities import grad_norm


class TracksGradNorms(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(16, 4)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("loss", loss)
        return loss

    def on_before_optimizer_step(self, optimizer):
        self.log_dict(grad_norm(self.layer, norm_type=2))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())

    def configure_callbacks(self):
        from lightning.pytorch.callbacks import ModelCheckpoint

        return ModelCheckpoint(monitor="grad_2.0_norm_total", mode="min")
