"""Dataloader helpers at Lightning's `utilities.data` path."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any, Union

from torch import Tensor
from torch.utils.data import IterableDataset

from torchbolt.trainer.data import has_len
from torchbolt.utilities.apply_func import extract_batch_size
from torchbolt.utilities.exceptions import MisconfigurationException
from torchbolt.utilities.rank_zero import WarningCache, rank_zero_warn
from torchbolt.utilities.warnings import PossibleUserWarning

__all__ = ["BType", "MisconfigurationException", "PossibleUserWarning", "WarningCache", "extract_batch_size",
           "has_iterable_dataset", "has_len", "has_len_all_ranks", "is_dataclass_instance", "rank_zero_warn",
           "sized_len", "suggested_max_num_workers"]

#: What a batch can be: a tensor, a string, or a mapping/iterable of those.
BType = Union[Tensor, str, Mapping[Any, "BType"], Iterable["BType"]]  # noqa: UP007 - a recursive alias needs Union


def sized_len(iterable: Any) -> int | None:
    """len(iterable), or None when it has no length."""
    return len(iterable) if has_len(iterable) else None


def _cpus_available() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # the CPUs this process may use, not the machine's
    return os.cpu_count() or 1


def suggested_max_num_workers(local_world_size: int) -> int:
    """An upper bound for DataLoader(num_workers=...): the CPUs per local process, less one for the
    process itself (at least 1)."""
    if local_world_size < 1:
        raise ValueError(f"suggested_max_num_workers: local_world_size must be >= 1, got {local_world_size}")
    return max(1, _cpus_available() // local_world_size - 1)


def has_iterable_dataset(dataloader: Any) -> bool:
    """Whether `dataloader` reads an IterableDataset."""
    return isinstance(getattr(dataloader, "dataset", None), IterableDataset)


def is_dataclass_instance(obj: object) -> bool:
    """Whether `obj` is a dataclass instance (not a dataclass type)."""
    return dataclasses.is_dataclass(obj) and not isinstance(obj, type)


def has_len_all_ranks(dataloader: Any, strategy: Any = None, allow_zero_length_dataloader_with_multiple_devices:
                      bool = False) -> bool:
    """Whether `dataloader` has a length (on this process; the distributed check is the strategy's)."""
    return has_len(dataloader)
