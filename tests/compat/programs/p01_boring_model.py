"""The smallest bug-report style program: Lightning's demo BoringModel, `import lightning as L`."""

import lightning as L
from lightning.pytorch.demos import BoringModel

if __name__ == "__main__":
    L.seed_everything(7)
    model = BoringModel()
    trainer = L.Trainer(max_epochs=2, limit_train_batches=8, limit_val_batches=4, limit_test_batches=4,
                        enable_progress_bar=False, enable_model_summary=False, logger=False)
    trainer.fit(model)
    trainer.test(model)
