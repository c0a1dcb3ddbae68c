from typing import Any

import lightning.pytorch as pl
import torch


class AllHooks(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def setup(self, stage: str) -> None:
        self.stage = stage

    def teardown(self, stage: str) -> None:
        self.stage = None

    def on_fit_start(self) -> None:
        self.print("fit starts")

    def on_train_start(self) -> None:
        self.log("start_lr", 0.1)

    def on_train_batch_start(self, batch: Any, batch_idx: int):
        if batch is None:
            return -1
        return None

    def training_step(self, batch, batch_idx):
        out = self.layer(batch).mean()
        self.log("hooks_loss", out, on_step=True, on_epoch=False)
        return out

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log("hooks_out", outputs["loss"])

    def on_before_backward(self, loss):
        self.log("pre_backward", loss)

    def on_after_backward(self):
        pass

    def on_before_zero_grad(self, optimizer):
        pass

    def on_validation_model_eval(self) -> None:
        super().on_validation_model_eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["extra"] = 1

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.extra = checkpoint.get("extra")

    def on_after_batch_transfer(self, batch, dataloader_idx):
        return batch

    def configure_callbacks(self):
        return []

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
