import torch
import lightning as L


class CollectsOutputs(L.LightningModule):
    """The 2.x way to aggregate step outputs: keep them on self and clear them at epoch end."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(5, 2)
        self.validation_outputs = []

    def training_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        pred = self.layer(batch)
        self.validation_outputs.append(pred)
        return pred

    def on_validation_epoch_end(self):
        stacked = torch.cat(self.validation_outputs)
        self.log("val_mean", stacked.mean())
        self.validation_outputs.clear()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
