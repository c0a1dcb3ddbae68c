import lightning as L
import torch


class Values(L.LightningModule):
    def training_step(self, batch, batch_idx):
        loss = self(batch).sum()
        self.log("losses", {"a": loss, "b": loss})  # positive
        self.log("many", [1.0, 2.0])  # positive
        self.log("name", "text")  # positive
        self.log("nothing", None)  # positive
        self.log_dict({"nested": {"a": 1.0}})  # positive
        self.log("loss", loss)  # near miss
        self.log("mean", loss.mean())  # near miss
        self.log("count", 3)  # near miss
        self.log_dict({"a": loss, "b": 2.0})  # near miss
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
