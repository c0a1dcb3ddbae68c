"""Strategies at Lightning's import path (`lightning.pytorch.strategies`)."""

from __future__ import annotations

from torchbolt.strategies.ddp import DDPStrategy
from torchbolt.strategies.fsdp import FSDPStrategy
from torchbolt.strategies.parallel import ParallelStrategy
from torchbolt.strategies.strategy import SingleDeviceStrategy, Strategy

__all__ = ["DDPStrategy", "FSDPStrategy", "ParallelStrategy", "SingleDeviceStrategy", "Strategy"]
