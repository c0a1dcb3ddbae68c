"""trainer.predict with a BasePredictionWriter that saves each batch's predictions."""

import json
import os

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Writer(BasePredictionWriter):
    def __init__(self, output_dir):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        os.makedirs(self.output_dir, exist_ok=True)
        torch.save(prediction, os.path.join(self.output_dir, f"batch_{batch_idx}.pt"))


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 2)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        (x,) = batch
        return self.layer(x).softmax(dim=-1)


if __name__ == "__main__":
    pl.seed_everything(4)
    loader = DataLoader(TensorDataset(torch.randn(20, 3)), batch_size=8)
    trainer = pl.Trainer(callbacks=[Writer("predictions")], enable_progress_bar=False, logger=False)
    out = trainer.predict(Model(), loader)
    assert len(out) == 3 and sorted(os.listdir("predictions")) == ["batch_0.pt", "batch_1.pt", "batch_2.pt"]
    written = {name: torch.load(os.path.join("predictions", name)).tolist() for name in sorted(os.listdir("predictions"))}
    with open("predictions.json", "w") as f:
        json.dump({"returned": [o.tolist() for o in out], "written": written}, f)
    print("predicted", [tuple(o.shape) for o in out])
