import lightning as L
import torch


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(8, 4).cuda()  # moved by hand
        self.register_buffer("scale", torch.ones(4, device="cuda"))

    def training_step(self, batch, batch_idx):
        x = batch.cuda()
        noise = torch.randn(x.shape, device="cuda")
        y = (x + noise).to("cuda")
        return self.encoder(y).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Data(L.LightningDataModule):
    def setup(self, stage):
        self.table = torch.arange(10).to("cuda")
