from lightning.pytorch import Trainer

from models.trainable import Model

Trainer(max_epochs=1, num_sanity_val_steps=0, enable_model_summary=False).fit(Model(), train_dataloaders=None)
