"""A training script: CLI-ish arguments feed a Trainer with every common option."""

import argparse
from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from m01_classifier import Classifier
from m05_datamodule import RandomDataModule


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    trainer = L.Trainer(
        max_epochs=args.epochs,
        max_time=timedelta(hours=1),
        accelerator="cpu",
        devices=1,
        precision="32-true",
        deterministic=True,
        limit_train_batches=0.5,
        limit_val_batches=10,
        val_check_interval=0.25,
        num_sanity_val_steps=0,
        accumulate_grad_batches=2,
        gradient_clip_algorithm="norm",
        logger=[TensorBoardLogger("tb_logs", name="clf"), CSVLogger("csv_logs", flush_logs_every_n_steps=50)],
        callbacks=[ModelCheckpoint(monitor="val_acc", mode="max", filename="{epoch}-{val_acc:.2f}"),
                   TQDMProgressBar(refresh_rate=10)],
        profiler="simple",
    )
    model = Classifier(lr=1e-3)
    trainer.fit(model, datamodule=RandomDataModule(batch_size=16))
    trainer.test(model, datamodule=RandomDataModule(), ckpt_path="best")


if __name__ == "__main__":
    main()
