import torch
import torchbolt as tb


class BoltModel(tb.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(6, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("bolt_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def run(loader):
    tb.Trainer(max_epochs=2, enable_progress_bar=False).fit(BoltModel(), loader)
