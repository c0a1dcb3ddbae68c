"""Experiment loggers: the `Logger` base class, `TensorBoardLogger` and `CSVLogger`.

Importing this package does not import TensorBoard; the event writer is created on first use.
"""

from __future__ import annotations

from torchbolt.loggers.csv_logs import CSVLogger
from torchbolt.loggers.logger import DummyLogger, Logger
from torchbolt.loggers.tensorboard import TensorBoardLogger

__all__ = ["CSVLogger", "DummyLogger", "Logger", "TensorBoardLogger"]


def __getattr__(name: str) -> object:
    from torchbolt.compat.unsupported import module_getattr  # Lightning's names get their alternative

    return module_getattr(__name__)(name)
