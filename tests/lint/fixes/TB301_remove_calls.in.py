import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        opt.zero_grad()
        loss = self(batch).sum()
        loss.backward()  # old habit
        opt.step()
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
