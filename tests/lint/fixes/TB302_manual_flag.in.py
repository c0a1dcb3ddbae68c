import lightning as L
import torch


class Gan(L.LightningModule):
    def __init__(self, latent: int = 8):
        super().__init__()
        self.latent = latent

    def training_step(self, batch, batch_idx):
        g_opt, d_opt = self.optimizers()
        loss = self(batch).sum()
        self.manual_backward(loss)
        g_opt.step()
        d_opt.step()

    def configure_optimizers(self):
        return [torch.optim.Adam(self.parameters()), torch.optim.Adam(self.parameters())]
