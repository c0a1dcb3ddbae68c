import lightning.pytorch as pl
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from data.mnist_like import RandomImageDataModule
from models import LitClassifier


def main():
    model = LitClassifier(num_classes=10)
    data = RandomImageDataModule(batch_size=64)
    trainer = pl.Trainer(
        max_epochs=5,
        accelerator="auto",
        devices="auto",
        precision="bf16-mixed",
        callbacks=[ModelCheckpoint(monitor="val_loss", save_top_k=2), LearningRateMonitor("epoch")],
        logger=CSVLogger("logs", name="classifier"),
        gradient_clip_val=1.0,
        deterministic=True,
    )
    trainer.fit(model, datamodule=data)
    trainer.test(model, datamodule=data, ckpt_path="best")


if __name__ == "__main__":
    main()
