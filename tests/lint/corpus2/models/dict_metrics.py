import torch
import lightning as L
from lightning.pytorch.callbacks import EarlyStopping


class DictMetrics(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).mean()
        self.log_dict(dict(train_mae=loss.abs(), train_bias=loss))
        return loss

    def validation_step(self, batch, batch_idx):
        self.log_dict(dict(val_mae=self.layer(batch).abs().mean()))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


early = EarlyStopping(monitor="val_mae", mode="min")
