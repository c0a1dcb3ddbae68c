from lightning.pytorch import Trainer

a = Trainer(strategy="ddp", devices=2)
b = Trainer(strategy='xla')
