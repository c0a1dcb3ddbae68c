import lightning.pytorch as pl
import torch
from torch import nn


class GAN(pl.LightningModule):
    """Manual optimization with two optimizers and two schedulers."""

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.automatic_optimization = False
        self.latent_dim = latent_dim
        self.generator = nn.Sequential(nn.Linear(latent_dim, 32), nn.ReLU(), nn.Linear(32, 64))
        self.discriminator = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, z):
        return self.generator(z)

    def training_step(self, batch, batch_idx):
        g_opt, d_opt = self.optimizers()
        g_sched, d_sched = self.lr_schedulers()
        real = batch
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device)

        self.toggle_optimizer(g_opt)
        g_loss = -self.discriminator(self(z)).mean()
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        self.untoggle_optimizer(g_opt)

        with self.toggled_optimizer(d_opt):
            fake = self(z).detach()
            d_loss = self.discriminator(fake).mean() - self.discriminator(real).mean()
            d_opt.zero_grad()
            self.manual_backward(d_loss)
            self.clip_gradients(d_opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
            d_opt.step()

        if self.trainer.is_last_batch:
            g_sched.step()
            d_sched.step()
        self.log_dict({"g_loss": g_loss, "d_loss": d_loss}, prog_bar=True)

    def configure_optimizers(self):
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=2e-4)
        d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4)
        return [g_opt, d_opt], [torch.optim.lr_scheduler.StepLR(g_opt, 10),
                                torch.optim.lr_scheduler.StepLR(d_opt, 10)]
