import lightning as L
import torch


class Net(L.LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.lr = lr

    def training_step(self, batch, batch_idx):
        loss = self(batch).sum()
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        # compare against the target
        return {"loss": (self(x) - y).abs().mean()}

    def validation_epoch_end(self, outputs):
        """Average the validation loss."""
        avg = torch.stack([o["loss"] for o in outputs]).mean()
        self.log("val_loss", avg)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class NoInit(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def test_step(self, batch, batch_idx):
        preds = self(batch)
        return preds

    def test_epoch_end(self, outs):
        self.log("n", float(len(outs)))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
