"""The Lightning README autoencoder, `import lightning as L`, on random 28x28 images."""

import lightning as L
import torch
from torch import nn, optim, utils

encoder = nn.Sequential(nn.Linear(28 * 28, 64), nn.ReLU(), nn.Linear(64, 3))
decoder = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 28 * 28))


class LitAutoEncoder(L.LightningModule):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def training_step(self, batch, batch_idx):
        x, _ = batch
        x = x.view(x.size(0), -1)
        z = self.encoder(x)
        x_hat = self.decoder(z)
        loss = nn.functional.mse_loss(x_hat, x)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    L.seed_everything(0)
    images = torch.rand(96, 1, 28, 28)
    dataset = utils.data.TensorDataset(images, torch.zeros(96))
    train_loader = utils.data.DataLoader(dataset, batch_size=16, shuffle=True)
    autoencoder = LitAutoEncoder(encoder, decoder)
    trainer = L.Trainer(limit_train_batches=5, max_epochs=2, enable_progress_bar=False, logger=False,
                        enable_checkpointing=False)
    trainer.fit(model=autoencoder, train_dataloaders=train_loader)
