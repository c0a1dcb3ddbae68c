import os

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter


class Writer(BasePredictionWriter):
    def __init__(self, output_dir: str):
        super().__init__(write_interval="batch")
        self.output_dir = output_dir

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx):
        torch.save(prediction, os.path.join(self.output_dir, f"{batch_idx}.pt"))


class Predictor(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self.layer(batch).softmax(-1).cpu()

    def on_predict_epoch_end(self):
        self.print("predictions done")


def predict(loader):
    trainer = L.Trainer(callbacks=[Writer("preds")], logger=False, enable_checkpointing=False)
    return trainer.predict(Predictor(), dataloaders=loader, return_predictions=False)
