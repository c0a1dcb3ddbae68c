from lightning.pytorch import LightningModule
import torch


class TwoHeads(LightningModule):
    """Several optimizers with per-optimizer schedulers, stepped by hand."""

    automatic_optimization = False

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 4)
        self.b = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        opts = self.optimizers()
        loss = self.b(self.a(batch)).pow(2).mean()
        for opt in opts:
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in opts:
            opt.step()
        for sched in self.lr_schedulers():
            sched.step()
        self.log("two_heads_loss", loss)

    def configure_optimizers(self):
        opt_a = torch.optim.SGD(self.a.parameters(), lr=0.1, momentum=0.9)
        opt_b = torch.optim.Adam(self.b.parameters(), lr=1e-3)
        return (
            {"optimizer": opt_a, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.ExponentialLR(opt_a, 0.9),
                                                  "interval": "step"}},
            {"optimizer": opt_b, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt_b, T_max=10)},
        )
