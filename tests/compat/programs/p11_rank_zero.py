"""rank_zero_only / rank_zero_info in a training script, as multi-GPU-ready code writes them."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

calls = []


@rank_zero_only
def report(message):
    calls.append(message)
    return len(calls)


class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.layer(x), y)
        self.log("loss", loss)
        return loss

    def on_train_epoch_end(self):
        report(f"epoch {self.current_epoch}")
        rank_zero_info("finished epoch %d", self.current_epoch)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)


if __name__ == "__main__":
    pl.seed_everything(2)
    x = torch.randn(32, 2)
    trainer = pl.Trainer(max_epochs=3, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False)
    trainer.fit(Model(), DataLoader(TensorDataset(x, x[:, :1] * 2), batch_size=8))
    assert rank_zero_only.rank == 0
    assert calls == ["epoch 0", "epoch 1", "epoch 2"], calls
    rank_zero_only.rank = 1
    assert report("skipped") is None and len(calls) == 3
    rank_zero_only.rank = 0
