import pytorch_lightning as pl

t1 = pl.Trainer(gpus=2)  # positive
t2 = pl.Trainer(accelerator="gpu", gpus=[0, 1])  # positive
t3 = pl.Trainer(amp_backend="native", precision="16-mixed")  # positive
t4 = pl.Trainer(resume_from_checkpoint="last.ckpt")  # positive
t5 = pl.Trainer(auto_lr_find=True)  # positive
t6 = pl.Trainer(replace_sampler_ddp=False)  # positive
t7 = pl.Trainer(accelerator="gpu", devices=2)  # near miss
t4.fit(None)
