"""DeviceStatsMonitor: log the accelerator's (and optionally the CPU's) statistics around every batch."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


def _psutil_available() -> bool:
    return importlib.util.find_spec("psutil") is not None


def get_cpu_stats() -> dict[str, float]:
    """CPU and memory utilisation in percent (needs psutil)."""
    import psutil

    return {
        "cpu_vm_percent": psutil.virtual_memory().percent,
        "cpu_percent": psutil.cpu_percent(),
        "cpu_swap_percent": psutil.swap_memory().percent,
    }


def get_device_stats(device: torch.device) -> dict[str, float]:
    """Statistics of `device`: CUDA's memory counters, or the CPU's utilisation."""
    if device.type == "cuda":
        return {k: float(v) for k, v in torch.cuda.memory_stats(device).items()}
    if device.type == "cpu":
        return get_cpu_stats()
    return {}


class DeviceStatsMonitor(Callback):
    """Logs device statistics at the start and end of every train/validation/test batch, on the steps the
    Trainer logs (`log_every_n_steps`). `cpu_stats=True` adds CPU statistics on an accelerator; `False`
    turns them off on CPU. Metric names look like `DeviceStatsMonitor.on_train_batch_end/cpu_percent`."""

    def __init__(self, cpu_stats: bool | None = None) -> None:
        self._cpu_stats = cpu_stats

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not trainer.loggers:
            raise MisconfigurationException(
                "Cannot use `DeviceStatsMonitor` callback with `Trainer(logger=False)`: it writes to the loggers."
            )
        if self._cpu_stats is None and pl_module.device.type == "cpu" and not _psutil_available():
            raise ModuleNotFoundError(
                "`DeviceStatsMonitor` cannot log CPU stats as `psutil` is not installed: `pip install psutil`, or "
                "pass DeviceStatsMonitor(cpu_stats=False)."
            )

    def _log(self, trainer: Trainer, pl_module: LightningModule, key: str) -> None:
        if not trainer._loops.should_log_step():
            return
        device = pl_module.device
        if self._cpu_stats is False and device.type == "cpu":
            return
        stats = get_device_stats(device)
        if self._cpu_stats and device.type != "cpu":
            stats.update(get_cpu_stats())
        step = trainer._progress.fit.batches_that_stepped
        for logger in trainer.loggers:
            sep = getattr(logger, "group_separator", "/")
            prefix = f"{type(self).__qualname__}.{key}{sep}"
            logger.log_metrics({prefix + k: v for k, v in stats.items()}, step=step)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._log(trainer, pl_module, "on_train_batch_start")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._log(trainer, pl_module, "on_train_batch_end")

    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None:
        self._log(trainer, pl_module, "on_validation_batch_start")

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        self._log(trainer, pl_module, "on_validation_batch_end")

    def on_test_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int,
                            dataloader_idx: int = 0) -> None:
        self._log(trainer, pl_module, "on_test_batch_start")

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._log(trainer, pl_module, "on_test_batch_end")
