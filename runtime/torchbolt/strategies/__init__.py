"""Strategies at Lightning's import path (`lightning.pytorch.strategies`)."""

from __future__ import annotations

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.strategies.ddp import DDPStrategy
from torchbolt.strategies.fsdp import FSDPStrategy
from torchbolt.strategies.parallel import ParallelStrategy
from torchbolt.strategies.strategy import SingleDeviceStrategy, Strategy

__all__ = ["DDPStrategy", "FSDPStrategy", "ParallelStrategy", "SingleDeviceStrategy", "Strategy"]


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
