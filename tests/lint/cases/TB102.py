import lightning as L
import torch


class EvalOnly(L.LightningModule):  # positive: fitted below without training_step
    def validation_step(self, batch, batch_idx):
        self.log("val_loss", 1.0)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class TestOnly(L.LightningModule):  # near miss: only validated/tested, never fitted
    def test_step(self, batch, batch_idx):
        pass


class Trains(L.LightningModule):  # near miss: fitted and trains
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


def main():
    trainer = L.Trainer(max_epochs=1)
    model = EvalOnly()
    trainer.fit(model)
    trainer.fit(Trains())
    trainer.test(TestOnly())
