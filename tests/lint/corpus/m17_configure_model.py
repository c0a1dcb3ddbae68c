import lightning as L
import torch


class LazyModel(L.LightningModule):
    def __init__(self, width: int = 16):
        super().__init__()
        self.width = width
        self.model = None

    def configure_model(self):
        if self.model is not None:
            return
        self.model = torch.nn.Sequential(torch.nn.Linear(self.width, self.width), torch.nn.GELU())

    def training_step(self, batch, batch_idx):
        return self.model(batch).sum()

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), weight_decay=0.01)
