from lightning.pytorch import Trainer

a = Trainer(precision=16)
b = Trainer(precision='bf16')
c = Trainer(precision="32")
