import pytorch_lightning as pl
import torch


class OldImportStyle(pl.LightningModule):
    """`pytorch_lightning` 2.x: same API under the old package name."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).sum()
        self.log("pl_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def train(loader):
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, enable_checkpointing=False)
    trainer.fit(OldImportStyle(), loader)
