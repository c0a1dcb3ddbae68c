import lightning as L
import torch


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.validation_step_outputs = []
        self.test_step_outputs = []

    def training_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        step_output = self.layer(batch).sum()
        self.validation_step_outputs.append(step_output)
        return step_output

    def on_validation_epoch_end(self):
        outputs = self.validation_step_outputs
        self.validation_step_outputs = []  # a fresh list for the next epoch
        self.last_outputs = outputs
        return self.summarise(outputs)

    def summarise(self, outputs):
        self.log("val_total", torch.stack(outputs).sum())

    def test_step(self, batch, batch_idx):
        step_output = self.layer(batch).sum()
        self.test_step_outputs.append(step_output)
        return step_output

    def on_test_epoch_end(self):
        outputs = self.test_step_outputs
        self.test_step_outputs = []  # a fresh list for the next epoch
        if not outputs:
            return
        self.log("test_n", float(len(outputs)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
