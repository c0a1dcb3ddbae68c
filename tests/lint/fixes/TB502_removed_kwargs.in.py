import pytorch_lightning as pl


def main(model):
    trainer = pl.Trainer(
        gpus=2,
        amp_backend="native",  # AMP
        replace_sampler_ddp=False,
        resume_from_checkpoint="last.ckpt",
    )
    trainer.fit(model)
    other = pl.Trainer(accelerator="gpu", gpus=[0, 1], move_metrics_to_cpu=True)
    return other
