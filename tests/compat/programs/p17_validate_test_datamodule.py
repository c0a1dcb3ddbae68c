"""A DataModule from Lightning's demos with validate/test calls before and after fit (L.pytorch.* paths)."""

import lightning as L
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel


class LoggingBoring(BoringModel):
    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train_loss", out["loss"])
        return out

    def validation_step(self, batch, batch_idx):
        loss = self.step(batch)
        self.log("val_loss", loss)
        return {"x": loss}

    def test_step(self, batch, batch_idx):
        loss = self.step(batch)
        self.log("test_loss", loss)
        return {"y": loss}


if __name__ == "__main__":
    L.seed_everything(31)
    dm = BoringDataModule()
    model = LoggingBoring()
    trainer = L.Trainer(max_epochs=2, limit_train_batches=10, limit_val_batches=5, limit_test_batches=5,
                        enable_progress_bar=False, logger=L.pytorch.loggers.CSVLogger("logs"))
    trainer.validate(model, datamodule=dm)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
