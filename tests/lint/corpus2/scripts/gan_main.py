from lightning import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from models.gan import GAN
from data.mnist_like import RandomImageDataModule

if __name__ == "__main__":
    checkpoint = ModelCheckpoint(monitor="g_loss", every_n_epochs=1)
    Trainer(max_epochs=2, callbacks=[checkpoint], enable_progress_bar=False).fit(GAN(), RandomImageDataModule())
