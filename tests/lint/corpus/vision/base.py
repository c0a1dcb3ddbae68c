import lightning as L
import torch


class VisionBase(L.LightningModule):
    """Shared training logic; subclasses provide the backbone."""

    def __init__(self):
        super().__init__()
        self.backbone = self.build_backbone()

    def build_backbone(self) -> torch.nn.Module:
        return torch.nn.Identity()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.backbone(x), y)
        self.log("vision_train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
