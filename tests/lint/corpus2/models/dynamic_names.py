"""Names computed at run time: they excuse monitors of this class (and its subclasses) only."""

import torch
import lightning as L


class PerTaskModel(L.LightningModule):
    tasks = ("depth", "normals")

    def __init__(self):
        super().__init__()
        self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(8, 1) for t in self.tasks})

    def training_step(self, batch, batch_idx):
        losses = {f"train_{t}": self.heads[t](batch).mean() for t in self.tasks}
        self.log_dict(losses)
        return sum(losses.values())

    def validation_step(self, batch, batch_idx):
        metrics = {name + "_val": head(batch).mean() for name, head in self.heads.items()}
        self.log_dict(metrics)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters())
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": "depth_val"}}
