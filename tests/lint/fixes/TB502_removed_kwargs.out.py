import pytorch_lightning as pl


def main(model):
    trainer = pl.Trainer(
        accelerator="gpu", devices=2,
        use_distributed_sampler=False,
    )
    trainer.fit(model, ckpt_path="last.ckpt")
    other = pl.Trainer(accelerator="gpu", devices=[0, 1])
    return other
