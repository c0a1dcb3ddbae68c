import lightning as L
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import TensorBoardLogger

from models.autoencoder import LitAutoEncoder
from data.mnist_like import RandomImageDataModule

model = LitAutoEncoder.load_from_checkpoint("ae.ckpt") if False else LitAutoEncoder()
trainer = L.Trainer(
    max_epochs=10,
    callbacks=[EarlyStopping(monitor="train_loss", mode="min", patience=2)],
    logger=TensorBoardLogger("tb_logs", name="ae", default_hp_metric=False),
    accumulate_grad_batches=4,
    val_check_interval=0.5,
    limit_val_batches=0.25,
)
trainer.fit(model, datamodule=RandomImageDataModule())
trainer.test(model, datamodule=RandomImageDataModule())
