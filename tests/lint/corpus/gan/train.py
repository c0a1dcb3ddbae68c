from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from gan.models import GAN


def main() -> None:
    trainer = Trainer(max_epochs=5, accelerator="auto", devices="auto", precision="bf16-mixed",
                      callbacks=[ModelCheckpoint(monitor="g_loss", mode="min", save_last=True)])
    trainer.fit(GAN(latent_dim=32))


if __name__ == "__main__":
    main()
