import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

from vision.resnetish import TinyResNet

trainer = L.Trainer(
    max_epochs=10,
    accelerator="gpu",
    devices=2,
    strategy="ddp_find_unused_parameters_true",
    callbacks=[
        ModelCheckpoint(dirpath="ckpts", monitor="vision_val_acc", mode="max", save_top_k=3),
        EarlyStopping(monitor="vision_train_loss_epoch", patience=5),
        LearningRateMonitor(logging_interval="step"),
    ],
    log_every_n_steps=10,
    gradient_clip_val=0.5,
)
trainer.fit(TinyResNet(), ckpt_path="last")
