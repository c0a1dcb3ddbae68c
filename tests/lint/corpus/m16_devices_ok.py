import lightning as L
import torch


class DeviceAware(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 4)
        self.register_buffer("offset", torch.zeros(4))
        self.teacher = torch.nn.Linear(4, 4)
        self.teacher.requires_grad_(False)

    def training_step(self, batch, batch_idx):
        noise = torch.randn(batch.shape, device=self.device)
        with torch.no_grad():
            target = self.teacher(batch)
        self.teacher.eval()
        loss = (self.layer(batch + noise + self.offset) - target).pow(2).mean()
        return loss

    def on_validation_epoch_end(self):
        weights = self.layer.weight.detach().cpu().numpy()
        self.log("weight_norm", float((weights ** 2).sum()))

    def validation_step(self, batch, batch_idx):
        x = batch.to(self.device, non_blocking=True)
        self.log("val_out", self.layer(x).mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.layer.parameters())
