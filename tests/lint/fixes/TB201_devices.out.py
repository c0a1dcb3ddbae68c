import lightning as L
import torch


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(8, 4)  # moved by hand
        self.register_buffer("scale", torch.ones(4))

    def training_step(self, batch, batch_idx):
        x = batch.to(self.device)
        noise = torch.randn(x.shape, device=self.device)
        y = (x + noise).to(self.device)
        return self.encoder(y).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Data(L.LightningDataModule):
    def setup(self, stage):
        self.table = torch.arange(10)
