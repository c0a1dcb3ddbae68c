import lightning as L
import torch


class CollectsOutputs(L.LightningModule):
    """The 2.x way to aggregate step outputs."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.validation_step_outputs: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        return self.layer(batch).sum()

    def validation_step(self, batch, batch_idx):
        preds = self.layer(batch)
        self.validation_step_outputs.append(preds)
        return preds

    def on_validation_epoch_end(self):
        all_preds = torch.cat(self.validation_step_outputs)
        self.log("val_pred_mean", all_preds.mean())
        self.validation_step_outputs.clear()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
