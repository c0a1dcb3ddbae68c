from lightning.pytorch import Trainer

a = Trainer(precision=16)  # positive
b = Trainer(precision="bf16")  # positive
c = Trainer(precision="32")  # positive
d = Trainer(precision="16-mixed")  # near miss
e = Trainer(precision="bf16-true")  # near miss
