import lightning as L
import torch


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def validation_epoch_end(self, outputs):
        self.last_outputs = outputs
        return self.summarise(outputs)

    def summarise(self, outputs):
        self.log("val_total", torch.stack(outputs).sum())

    def test_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def test_epoch_end(self, outputs):
        if not outputs:
            return
        self.log("test_n", float(len(outputs)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
