import torch
import lightning.pytorch as pl


class ShardedModel(pl.LightningModule):
    """Layers are created in configure_model (sharded strategies build them on the right device)."""

    def __init__(self, width: int = 256):
        super().__init__()
        self.width = width
        self.block = None

    def configure_model(self):
        if self.block is not None:
            return
        self.block = torch.nn.Sequential(torch.nn.Linear(self.width, self.width), torch.nn.GELU())

    def training_step(self, batch, batch_idx):
        loss = self.block(batch).pow(2).mean()
        self.log("train_loss", loss, sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-4, weight_decay=0.01)
