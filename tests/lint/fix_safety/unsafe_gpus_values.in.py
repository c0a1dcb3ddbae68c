import pytorch_lightning as pl
import torch


def trainers(args):
    maybe = pl.Trainer(gpus=int(torch.cuda.is_available()))
    maybe_too = pl.Trainer(gpus=1 if torch.cuda.is_available() else 0)
    chosen = pl.Trainer(gpus=args.gpus, max_epochs=3)
    return maybe, maybe_too, chosen
