import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def validation_end(self, outputs):
        self.log("val", torch.stack(outputs).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
