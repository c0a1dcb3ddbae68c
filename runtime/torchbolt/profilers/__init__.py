"""Profilers for `Trainer(profiler=...)`: time every hook and loop step under Lightning's action names.

`"simple"`, `"advanced"` and `"pytorch"` select `SimpleProfiler`, `AdvancedProfiler` and
`PyTorchProfiler`. Importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchbolt.profilers.profiler import PassThroughProfiler, Profiler

_LAZY = {
    "SimpleProfiler": "torchbolt.profilers.simple",
    "AdvancedProfiler": "torchbolt.profilers.advanced",
    "PyTorchProfiler": "torchbolt.profilers.pytorch",
    "XLAProfiler": "torchbolt.profilers.xla",
}

__all__ = ["AdvancedProfiler", "PassThroughProfiler", "Profiler", "PyTorchProfiler", "SimpleProfiler", "XLAProfiler"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchbolt.profilers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.profilers.advanced import AdvancedProfiler
    from torchbolt.profilers.pytorch import PyTorchProfiler
    from torchbolt.profilers.simple import SimpleProfiler
    from torchbolt.profilers.xla import XLAProfiler
