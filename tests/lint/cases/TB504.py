from lightning.pytorch import Trainer

a = Trainer(strategy="dp")  # positive
b = Trainer(strategy="ddp_sharded")  # positive
c = Trainer(strategy="ddp")  # near miss
d = Trainer(strategy="fsdp")  # near miss
