"""Experiment loggers: the `Logger` base class, `TensorBoardLogger` and `CSVLogger`.

Importing this package does not import TensorBoard; the event writer is created on first use.
"""

from __future__ import annotations

from torchbolt.loggers.csv_logs import CSVLogger
from torchbolt.loggers.logger import DummyLogger, Logger
from torchbolt.loggers.tensorboard import TensorBoardLogger

__all__ = ["CSVLogger", "DummyLogger", "Logger", "TensorBoardLogger"]
