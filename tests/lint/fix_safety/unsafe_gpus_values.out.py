import pytorch_lightning as pl
import torch


def trainers(args):
    maybe = pl.Trainer(accelerator="auto", devices=1)
    maybe_too = pl.Trainer(accelerator="auto", devices=1)
    chosen = pl.Trainer(accelerator="gpu" if args.gpus else "cpu", devices=args.gpus or "auto", max_epochs=3)
    return maybe, maybe_too, chosen
