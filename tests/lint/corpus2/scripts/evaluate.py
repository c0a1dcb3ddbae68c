"""Evaluation of a trained network: the eval-only Model is validated and tested, never fitted."""

import torch
from lightning.pytorch import Trainer

from models.eval_only import Model
from models.predict_only import Predictor


def evaluate(net: torch.nn.Module, loader):
    trainer = Trainer(accelerator="cpu", devices=1, logger=False)
    wrapper = Model(net)
    trainer.validate(wrapper, dataloaders=loader)
    trainer.test(wrapper, dataloaders=loader)
    return trainer.predict(Predictor(), dataloaders=loader)
