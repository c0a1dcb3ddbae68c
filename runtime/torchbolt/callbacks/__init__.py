"""Callbacks: the Callback base class and the built-in callbacks, imported lazily (PEP 562).

`import torchbolt.callbacks` stays cheap and torch-free; each built-in is imported from its own module
the first time it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from torchbolt.callbacks.callback import Callback

_LAZY = {
    "Checkpoint": "torchbolt.callbacks.checkpoint",
    "ModelCheckpoint": "torchbolt.callbacks.model_checkpoint",
    "EarlyStopping": "torchbolt.callbacks.early_stopping",
    "LearningRateMonitor": "torchbolt.callbacks.lr_monitor",
    "OnExceptionCheckpoint": "torchbolt.callbacks.on_exception_checkpoint",
    "GradientAccumulationScheduler": "torchbolt.callbacks.gradient_accumulation_scheduler",
    "ModelSummary": "torchbolt.callbacks.model_summary",
    "Timer": "torchbolt.callbacks.timer",
    "ProgressBar": "torchbolt.callbacks.progress",
    "TQDMProgressBar": "torchbolt.callbacks.progress",
    "LambdaCallback": "torchbolt.callbacks.lambda_function",
    "EventStreamCallback": "torchbolt.callbacks.event_stream",
}

__all__ = [
    "Callback", "Checkpoint", "EarlyStopping", "EventStreamCallback", "GradientAccumulationScheduler",
    "LambdaCallback", "LearningRateMonitor", "ModelCheckpoint", "ModelSummary", "OnExceptionCheckpoint",
    "ProgressBar", "TQDMProgressBar", "Timer",
]
assert set(__all__) == {"Callback", *_LAZY}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        from torchbolt.compat.unsupported import module_getattr  # Lightning's names get their alternative

        return module_getattr(__name__)(name)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.callbacks.checkpoint import Checkpoint
    from torchbolt.callbacks.early_stopping import EarlyStopping
    from torchbolt.callbacks.event_stream import EventStreamCallback
    from torchbolt.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
    from torchbolt.callbacks.lambda_function import LambdaCallback
    from torchbolt.callbacks.lr_monitor import LearningRateMonitor
    from torchbolt.callbacks.model_checkpoint import ModelCheckpoint
    from torchbolt.callbacks.model_summary import ModelSummary
    from torchbolt.callbacks.on_exception_checkpoint import OnExceptionCheckpoint
    from torchbolt.callbacks.progress import ProgressBar, TQDMProgressBar
    from torchbolt.callbacks.timer import Timer
