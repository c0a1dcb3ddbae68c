"""Callbacks: the Callback base class and the built-in callbacks, imported lazily (PEP 562).

`import torchbolt.callbacks` stays cheap and torch-free; each built-in is imported from its own module
the first time it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchbolt._lazy import lazy_getattr
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
    "BasePredictionWriter": "torchbolt.callbacks.prediction_writer",
    "StochasticWeightAveraging": "torchbolt.callbacks.stochastic_weight_avg",
    "BaseFinetuning": "torchbolt.callbacks.finetuning",
    "BackboneFinetuning": "torchbolt.callbacks.finetuning",
    "WeightAveraging": "torchbolt.callbacks.weight_averaging",
    "EMAWeightAveraging": "torchbolt.callbacks.weight_averaging",
    "SpikeDetection": "torchbolt.callbacks.spike",
    "ThroughputMonitor": "torchbolt.callbacks.throughput_monitor",
    "DeviceStatsMonitor": "torchbolt.callbacks.device_stats_monitor",
    "ModelPruning": "torchbolt.callbacks.pruning",
    "RichProgressBar": "torchbolt.callbacks.rich_progress",
    "RichModelSummary": "torchbolt.callbacks.rich_progress",
    "LearningRateFinder": "torchbolt.callbacks.lr_finder",
    "BatchSizeFinder": "torchbolt.callbacks.batch_size_finder",
}

__all__ = [
    "BackboneFinetuning", "BaseFinetuning", "BasePredictionWriter", "BatchSizeFinder", "Callback", "Checkpoint",
    "DeviceStatsMonitor", "EMAWeightAveraging", "EarlyStopping", "EventStreamCallback",
    "GradientAccumulationScheduler", "LambdaCallback", "LearningRateFinder", "LearningRateMonitor", "ModelCheckpoint",
    "ModelPruning", "ModelSummary", "OnExceptionCheckpoint", "ProgressBar", "RichModelSummary",
    "RichProgressBar", "SpikeDetection", "StochasticWeightAveraging", "TQDMProgressBar", "ThroughputMonitor",
    "Timer", "WeightAveraging",
]
assert set(__all__) == {"Callback", *_LAZY}


__getattr__ = lazy_getattr(__name__, _LAZY, globals())  # Lightning's names torchbolt lacks get their alternative


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from torchbolt.callbacks.batch_size_finder import BatchSizeFinder
    from torchbolt.callbacks.checkpoint import Checkpoint
    from torchbolt.callbacks.device_stats_monitor import DeviceStatsMonitor
    from torchbolt.callbacks.early_stopping import EarlyStopping
    from torchbolt.callbacks.event_stream import EventStreamCallback
    from torchbolt.callbacks.finetuning import BackboneFinetuning, BaseFinetuning
    from torchbolt.callbacks.gradient_accumulation_scheduler import GradientAccumulationScheduler
    from torchbolt.callbacks.lambda_function import LambdaCallback
    from torchbolt.callbacks.lr_finder import LearningRateFinder
    from torchbolt.callbacks.lr_monitor import LearningRateMonitor
    from torchbolt.callbacks.model_checkpoint import ModelCheckpoint
    from torchbolt.callbacks.model_summary import ModelSummary
    from torchbolt.callbacks.on_exception_checkpoint import OnExceptionCheckpoint
    from torchbolt.callbacks.prediction_writer import BasePredictionWriter
    from torchbolt.callbacks.progress import ProgressBar, TQDMProgressBar
    from torchbolt.callbacks.pruning import ModelPruning
    from torchbolt.callbacks.rich_progress import RichModelSummary, RichProgressBar
    from torchbolt.callbacks.spike import SpikeDetection
    from torchbolt.callbacks.stochastic_weight_avg import StochasticWeightAveraging
    from torchbolt.callbacks.throughput_monitor import ThroughputMonitor
    from torchbolt.callbacks.timer import Timer
    from torchbolt.callbacks.weight_averaging import EMAWeightAveraging, WeightAveraging
