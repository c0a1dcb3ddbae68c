"""Gradient accumulation and clipping, with grad_norm logged in on_before_optimizer_step."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import grad_norm
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("loss", loss)
        return loss

    def on_before_optimizer_step(self, optimizer):
        self.log_dict(grad_norm(self, norm_type=2))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


if __name__ == "__main__":
    pl.seed_everything(13)
    x = torch.randn(64, 5)
    loader = DataLoader(TensorDataset(x, 3 * x[:, :1] - x[:, 1:2]), batch_size=8)
    trainer = pl.Trainer(max_epochs=2, accumulate_grad_batches=2, gradient_clip_val=0.5,
                         gradient_clip_algorithm="norm", enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(Model(), loader)
