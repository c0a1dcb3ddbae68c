"""Experiment loggers: the `Logger` base class, `TensorBoardLogger`, `CSVLogger`, and `MLFlowLogger`,
`WandbLogger`, `CometLogger` (each needs its own package, checked when the logger is constructed).

Importing this package does not import TensorBoard, mlflow, wandb or comet_ml.
"""

from __future__ import annotations

from torchbolt.loggers.comet import CometLogger
from torchbolt.loggers.csv_logs import CSVLogger
from torchbolt.loggers.logger import DummyLogger, Logger
from torchbolt.loggers.mlflow import MLFlowLogger
from torchbolt.loggers.tensorboard import TensorBoardLogger
from torchbolt.loggers.wandb import WandbLogger

__all__ = ["CSVLogger", "CometLogger", "DummyLogger", "Logger", "MLFlowLogger", "TensorBoardLogger", "WandbLogger"]


def __getattr__(name: str) -> object:
    from torchbolt.compat.unsupported import module_getattr  # Lightning's names get their alternative

    return module_getattr(__name__)(name)
