import torch
from torch import nn
import lightning as L


class GAN(L.LightningModule):
    """Manual optimization with two optimizers, switchable from the constructor."""

    def __init__(self, latent_dim: int = 16, manual: bool = True):
        super().__init__()
        self.automatic_optimization = not manual
        self.generator = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, 28 * 28), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Linear(28 * 28, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
        self.latent_dim = latent_dim

    def training_step(self, batch, batch_idx):
        imgs, _ = batch
        imgs = imgs.view(imgs.size(0), -1)
        opt_g, opt_d = self.optimizers()
        z = torch.randn(imgs.size(0), self.latent_dim, device=self.device)
        fake = self.generator(z)

        self.toggle_optimizer(opt_g)
        g_loss = nn.functional.binary_cross_entropy_with_logits(self.discriminator(fake), torch.ones(imgs.size(0), 1, device=self.device))
        self.manual_backward(g_loss)
        opt_g.step()
        opt_g.zero_grad()
        self.untoggle_optimizer(opt_g)

        self.toggle_optimizer(opt_d)
        real_loss = nn.functional.binary_cross_entropy_with_logits(self.discriminator(imgs), torch.ones(imgs.size(0), 1, device=self.device))
        fake_loss = nn.functional.binary_cross_entropy_with_logits(self.discriminator(fake.detach()), torch.zeros(imgs.size(0), 1, device=self.device))
        d_loss = (real_loss + fake_loss) / 2
        self.manual_backward(d_loss)
        opt_d.step()
        opt_d.zero_grad()
        self.untoggle_optimizer(opt_d)
        self.log_dict({"g_loss": g_loss, "d_loss": d_loss}, prog_bar=True)

    def configure_optimizers(self):
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        return [opt_g, opt_d]
