import lightning as L
import torch


class Net(L.LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.lr = lr
        self.validation_step_outputs = []

    def training_step(self, batch, batch_idx):
        loss = self(batch).sum()
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        # compare against the target
        step_output = {"loss": (self(x) - y).abs().mean()}
        self.validation_step_outputs.append(step_output)
        return step_output

    def on_validation_epoch_end(self):
        """Average the validation loss."""
        outputs = self.validation_step_outputs
        self.validation_step_outputs = []  # a fresh list for the next epoch
        avg = torch.stack([o["loss"] for o in outputs]).mean()
        self.log("val_loss", avg)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class NoInit(L.LightningModule):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.test_step_outputs = []
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def test_step(self, batch, batch_idx):
        preds = self(batch)
        self.test_step_outputs.append(preds)
        return preds

    def on_test_epoch_end(self):
        outs = self.test_step_outputs
        self.test_step_outputs = []  # a fresh list for the next epoch
        self.log("n", float(len(outs)))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
