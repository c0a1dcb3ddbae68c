import pytorch_lightning as pl
import torch


def trainers(args):
    cpu = pl.Trainer(accelerator="cpu", max_epochs=1)
    none = pl.Trainer(accelerator="cpu")
    text_zero = pl.Trainer(accelerator="cpu")
    two = pl.Trainer(accelerator="gpu", devices=2)
    ids = pl.Trainer(accelerator="gpu", devices=[0, 1])
    maybe = pl.Trainer(gpus=int(torch.cuda.is_available()))
    chosen = pl.Trainer(gpus=args.gpus)
    return cpu, none, text_zero, two, ids, maybe, chosen
