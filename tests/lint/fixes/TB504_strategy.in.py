from lightning.pytorch import Trainer

a = Trainer(strategy="dp", devices=2)
b = Trainer(strategy='tpu_spawn')
