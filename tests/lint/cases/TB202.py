import lightning as L
import torch


class Modes(L.LightningModule):
    def validation_step(self, batch, batch_idx):
        self.eval()  # positive
        with torch.no_grad():  # positive
            out = self(batch)
        return out

    @torch.no_grad()  # positive (decorator)
    def test_step(self, batch, batch_idx):
        return self(batch)

    def training_step(self, batch, batch_idx):
        self.train()  # positive
        with torch.no_grad():  # near miss: a no-grad block in training is a choice
            target = self.teacher(batch)
        self.teacher.eval()  # near miss: a frozen sub-network
        return (self(batch) - target).pow(2).mean()

    def on_validation_epoch_end(self):
        with torch.inference_mode():  # positive
            pass

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
