import pytorch_lightning as pl
import torch


class LegacyImportStyle(pl.LightningModule):
    def training_step(self, batch, batch_idx):
        loss = self(batch).mean()
        return {"loss": loss}

    def forward(self, x):
        return x * 2

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-4)

    def on_train_epoch_end(self):
        self.log("epoch_done", float(self.current_epoch))
