"""Dataloaders for a run: where they come from, how many batches each yields, and combined iteration."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from torch.utils.data import DataLoader, IterableDataset, RandomSampler, SequentialSampler

from torchbolt.utilities.combined_loader import CombinedLoader, TrainBatches, evaluation_loaders
from torchbolt.utilities.exceptions import MisconfigurationException


def has_len(loader: Any) -> bool:
    """Whether `len(loader)` works and is finite (IterableDatasets without __len__ have none)."""
    try:
        n = len(loader)
    except (TypeError, NotImplementedError):
        return False
    return n is not None


def loader_length(loader: Any) -> float:
    """Number of batches of `loader`, or inf when it has no length."""
    return float(len(loader)) if has_len(loader) else float("inf")


def parse_num_batches(stage: str, length: float, limit: int | float) -> int | float:
    """Apply a limit_*_batches value (int count or float fraction) to a loader of `length` batches."""
    if length == 0:
        return 0
    if isinstance(limit, int):
        num: float = min(length, limit)
    elif length != float("inf"):
        num = int(length * limit)
    elif limit != 1.0:
        raise MisconfigurationException(
            f"The {stage} dataloader has no length, so limit_{stage}_batches must be 1.0 or an int, got {limit}."
        )
    else:
        num = length
    if num == 0 and isinstance(limit, float) and limit > 0.0 and length != float("inf"):
        raise MisconfigurationException(
            f"You requested to check {limit} of the `{stage}_dataloader` but {limit} * {int(length)} < 1. Please "
            f"increase the `limit_{stage}_batches` argument. Try at least `limit_{stage}_batches={1.0 / length}`"
        )
    return int(num) if num != float("inf") else num


def flatten_loaders(source: Any) -> tuple[list[Any], list[Any] | None]:
    """Evaluation loaders as a flat list (+ the dict keys when a dict was given)."""
    if source is None:
        return [], None
    if isinstance(source, CombinedLoader):
        return evaluation_loaders(source, "evaluate"), None
    if isinstance(source, Mapping):
        return list(source.values()), list(source.keys())
    if isinstance(source, (list, tuple)):
        return list(source), None
    return [source], None


def _rebuild_with_sampler(loader: DataLoader[Any], sampler: Any) -> DataLoader[Any]:
    """A copy of `loader` that draws indices from `sampler` (other settings kept)."""
    kwargs = dict(
        batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
        collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        persistent_workers=loader.persistent_workers,
    )
    if loader.num_workers > 0:
        kwargs["prefetch_factor"] = loader.prefetch_factor
    if loader.batch_size is None:  # the loader was built from a batch_sampler
        raise MisconfigurationException(
            "overfit_batches needs a DataLoader built with batch_size=..., not batch_sampler=...; build it with "
            "batch_size and shuffle=False."
        )
    return DataLoader(loader.dataset, **kwargs)


def without_shuffle(loader: Any, stage: str) -> Any:
    """For overfit_batches: the same loader reading the dataset in order (warns when it was shuffling)."""
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return loader
    if isinstance(loader.sampler, SequentialSampler):
        return loader
    warnings.warn(
        f"You requested to overfit but enabled {stage} dataloader shuffling. We are turning off the {stage} "
        "dataloader shuffling for you.",
        stacklevel=4,
    )
    return _rebuild_with_sampler(loader, SequentialSampler(loader.dataset))  # type: ignore[arg-type]


def install_worker_seeding(loader: Any) -> None:
    """After seed_everything(workers=True): give each worker of `loader` a distinct reproducible seed."""
    if os.environ.get("PL_SEED_WORKERS") != "1":
        return
    if isinstance(loader, DataLoader) and loader.num_workers > 0 and loader.worker_init_fn is None:
        from torchbolt.utilities.seed import worker_init_function

        loader.worker_init_fn = worker_init_function


def is_shuffling(loader: Any) -> bool:
    """Whether a DataLoader samples in random order."""
    return isinstance(loader, DataLoader) and isinstance(loader.sampler, RandomSampler)


def as_train_loader(source: Any) -> Any:
    """The single iterable the training loop reads: the loader itself, or a combined one for collections."""
    if isinstance(source, CombinedLoader):
        return TrainBatches(source)
    if isinstance(source, (list, tuple, Mapping)) and not isinstance(source, DataLoader):
        if isinstance(source, (list, tuple)) and len(source) == 1:
            return source[0]
        if not source:
            raise MisconfigurationException("train_dataloader returned an empty collection; return a DataLoader.")
        # several loaders train together as Lightning does: CombinedLoader's 'max_size_cycle'
        return TrainBatches(CombinedLoader(source, "max_size_cycle"))
    if not isinstance(source, Iterable):
        raise MisconfigurationException(
            f"train_dataloader returned a {type(source).__name__}, which cannot be iterated; return a DataLoader "
            "(or any iterable of batches)."
        )
    return source


def check_iterable(loader: Any, stage: str) -> None:
    """A clear error when a *_dataloader hook returned something that is not iterable."""
    if not isinstance(loader, Iterable):
        raise MisconfigurationException(
            f"{stage}_dataloader returned a {type(loader).__name__}, which cannot be iterated; return a DataLoader "
            "or a list of DataLoaders."
        )


def ceil_div(a: float, b: int) -> float:
    """ceil(a / b), keeping inf."""
    return a if a == float("inf") else math.ceil(a / b)
