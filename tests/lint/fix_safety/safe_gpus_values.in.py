import pytorch_lightning as pl
import torch


def trainers(args):
    cpu = pl.Trainer(gpus=None, max_epochs=1)
    none = pl.Trainer(gpus=0)
    text_zero = pl.Trainer(gpus="0")
    two = pl.Trainer(gpus=2)
    ids = pl.Trainer(gpus=[0, 1])
    maybe = pl.Trainer(gpus=int(torch.cuda.is_available()))
    chosen = pl.Trainer(gpus=args.gpus)
    return cpu, none, text_zero, two, ids, maybe, chosen
