import lightning as L
import torch


class Devices(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(4, 2).cuda()  # positive: module created in __init__
        self.register_buffer("mask", torch.ones(4, device="cuda"))  # positive
        self.ready = torch.cuda.is_available()  # near miss: a query, not a move

    def training_step(self, batch, batch_idx):
        x = batch.cuda()  # positive
        y = batch.to("cuda:0")  # positive
        z = batch.to(torch.device("cuda"))  # positive
        noise = torch.randn(4, device="cuda")  # positive
        w = batch.to(self.device)  # near miss: follows the Trainer's device
        v = batch.to(torch.float16)  # near miss: a dtype, not a device
        return self.net(x + y + z + noise + w + v).sum()

    def on_train_epoch_start(self):
        self.net.cpu()  # positive: moves the submodule off the accelerator

    def validation_step(self, batch, batch_idx):
        preds = self(batch).argmax(-1).cpu().numpy()  # near miss: host copy for numpy
        return preds

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


class Data(L.LightningDataModule):
    def setup(self, stage):
        self.data = torch.zeros(10).cuda()  # positive: DataModule


def helper(x):
    return x.cuda()  # near miss: plain function outside Lightning classes
