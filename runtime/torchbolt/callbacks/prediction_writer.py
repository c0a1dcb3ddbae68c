"""BasePredictionWriter: write predictions to disk per batch, per epoch, or both, while `predict` runs."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


class WriteInterval(str, Enum):
    """When a prediction writer writes: after each batch, at the end of the epoch, or both."""

    BATCH = "batch"
    EPOCH = "epoch"
    BATCH_AND_EPOCH = "batch_and_epoch"

    @property
    def on_batch(self) -> bool:
        return self in (WriteInterval.BATCH, WriteInterval.BATCH_AND_EPOCH)

    @property
    def on_epoch(self) -> bool:
        return self in (WriteInterval.EPOCH, WriteInterval.BATCH_AND_EPOCH)


class BasePredictionWriter(Callback):
    """Subclass and implement `write_on_batch_end` and/or `write_on_epoch_end` to store predictions.

    `write_interval` selects which of them the Trainer calls: "batch", "epoch" or "batch_and_epoch".
    The sample indices of each batch are passed along when the dataloader uses a batch sampler.
    """

    def __init__(self, write_interval: Literal["batch", "epoch", "batch_and_epoch"] = "batch") -> None:
        allowed = [i.value for i in WriteInterval]
        if write_interval not in allowed:
            raise MisconfigurationException(
                f"`write_interval` should be one of {allowed}, got {write_interval!r}."
            )
        self.interval = WriteInterval(write_interval)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        step = getattr(pl_module, "predict_step", None)
        if step is not None:
            try:
                params = inspect.signature(step).parameters
            except (TypeError, ValueError):
                params = {}  # type: ignore[assignment]
            if "dataloader_iter" in params:
                raise NotImplementedError(
                    "The `PredictionWriterCallback` does not support using `dataloader_iter`; take "
                    "`(batch, batch_idx)` in predict_step instead."
                )

    def write_on_batch_end(self, trainer: Trainer, pl_module: LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        """Write one batch's prediction; called after each predict batch when the interval includes "batch"."""
        raise NotImplementedError()

    def write_on_epoch_end(self, trainer: Trainer, pl_module: LightningModule, predictions: Sequence[Any],
                           batch_indices: Sequence[Any]) -> None:
        """Write all predictions; called once at the end of predict when the interval includes "epoch"."""
        raise NotImplementedError()

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self.interval.on_batch:
            return
        indices = getattr(trainer.predict_loop, "current_batch_indices", None)
        self.write_on_batch_end(trainer, pl_module, outputs, indices, batch, batch_idx, dataloader_idx)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.interval.on_epoch:
            return
        loop = trainer.predict_loop
        self.write_on_epoch_end(trainer, pl_module, loop.predictions, getattr(loop, "epoch_batch_indices", []))


class _RecordingBatchSampler:
    """Wraps a dataloader's batch sampler and remembers the indices of every batch it hands out."""

    def __init__(self, sampler: Any) -> None:
        self._sampler = sampler
        self.seen: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        self.seen = []
        for indices in self._sampler:
            self.seen.append(list(indices))
            yield indices

    def __len__(self) -> int:
        return len(self._sampler)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sampler, name)


def record_batch_indices(loader: Any) -> _RecordingBatchSampler | None:
    """Make `loader` record the sample indices of its batches (as Lightning's predict loop does).

    Returns the recorder, or None when the loader has no batch sampler (iterable datasets, custom loaders).
    The DataLoader forbids reassigning `batch_sampler` after construction, so the wrapper is set directly.
    """
    sampler = getattr(loader, "batch_sampler", None)
    if sampler is None:
        return None
    if isinstance(sampler, _RecordingBatchSampler):
        return sampler
    recorder = _RecordingBatchSampler(sampler)
    object.__setattr__(loader, "batch_sampler", recorder)
    return recorder


def uses_prediction_writer(callbacks: Sequence[Any]) -> bool:
    """Whether any callback is a prediction writer (then the predict loop records batch indices)."""
    return any(isinstance(cb, BasePredictionWriter) for cb in callbacks)
