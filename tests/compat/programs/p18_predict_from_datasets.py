"""LightningDataModule.from_datasets, ModelSummary(max_depth=2), and trainer.predict's returned predictions."""

import json

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset


class Tagger(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(3, 8), nn.GELU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.encoder(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("loss", loss, prog_bar=True)
        return loss

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        x = batch[0]
        return self(x).argmax(dim=-1)

    def configure_optimizers(self):
        return torch.optim.RMSprop(self.parameters(), lr=0.01)


if __name__ == "__main__":
    L.seed_everything(77, workers=True)
    x = torch.randn(40, 3)
    y = (x[:, 0] > x[:, 1]).long()
    dm = L.LightningDataModule.from_datasets(train_dataset=TensorDataset(x, y), predict_dataset=TensorDataset(x),
                                             batch_size=10)
    trainer = L.Trainer(max_epochs=3, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                        callbacks=[L.pytorch.callbacks.ModelSummary(max_depth=2)])
    model = Tagger()
    trainer.fit(model, datamodule=dm)
    predictions = trainer.predict(model, datamodule=dm)
    with open("predictions.json", "w") as f:
        json.dump([p.tolist() for p in predictions], f)
