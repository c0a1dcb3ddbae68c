"""torchmetrics objects logged directly: `self.log("acc", metric)` and `self.log_dict(MetricCollection)`."""

import lightning.pytorch as pl
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Classifier(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 3)
        self.train_acc = torchmetrics.classification.MulticlassAccuracy(num_classes=3)
        self.val_metrics = torchmetrics.MetricCollection({
            "val_acc": torchmetrics.classification.MulticlassAccuracy(num_classes=3),
            "val_f1": torchmetrics.classification.MulticlassF1Score(num_classes=3),
        })

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train_acc", self.train_acc, on_step=True, on_epoch=True)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_metrics.update(self.net(x), y)
        self.log_dict(self.val_metrics)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2)


if __name__ == "__main__":
    pl.seed_everything(6)
    x = torch.randn(60, 4)
    y = x[:, :3].argmax(dim=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=12)
    trainer = pl.Trainer(max_epochs=2, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False)
    trainer.fit(Classifier(), loader, loader)
