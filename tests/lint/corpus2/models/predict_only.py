import torch
from lightning.pytorch import LightningModule


class Predictor(LightningModule):
    """Inference only: used with trainer.predict."""

    def __init__(self, checkpoint_path: str | None = None):
        super().__init__()
        self.net = torch.nn.Linear(4, 2)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return torch.softmax(self.net(batch), dim=-1)
