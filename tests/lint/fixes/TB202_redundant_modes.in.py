import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def validation_step(self, batch, batch_idx):
        self.eval()
        with torch.no_grad():
            # score the batch
            out = self(batch)
            self.log("val_out", out.mean())

    @torch.no_grad()
    def test_step(self, batch, batch_idx):
        self.log("test_out", self(batch).mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
