import lightning as L
import torch
import torchmetrics
from lightning.pytorch.callbacks import ModelCheckpoint


class WithMetrics(L.LightningModule):
    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.model = torch.nn.Linear(8, num_classes)
        metrics = torchmetrics.MetricCollection({"acc": torchmetrics.Accuracy("multiclass", num_classes=3)})
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.model(x)
        self.train_metrics.update(logits, y)
        return torch.nn.functional.cross_entropy(logits, y)

    def on_train_epoch_end(self):
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_metrics.update(self.model(x), y)

    def on_validation_epoch_end(self):
        self.log_dict(self.val_metrics.compute())
        self.val_metrics.reset()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


checkpoint = ModelCheckpoint(monitor="val/acc", mode="max")
