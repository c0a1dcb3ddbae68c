import torch

import torchbolt as tb


class BoltModel(tb.LightningModule):
    def training_step(self, batch, batch_idx):
        out = self(batch)
        return out.sum()

    def forward(self, x):
        return x + 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

    def setup(self, stage: str) -> None:
        self.stage_seen = stage
