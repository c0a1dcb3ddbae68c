from lightning.pytorch import Trainer

a = Trainer(precision="16-mixed")
b = Trainer(precision='bf16-mixed')
c = Trainer(precision="32-true")
