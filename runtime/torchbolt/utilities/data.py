"""Dataloader helpers at Lightning's `utilities.data` path."""

from __future__ import annotations

import os
from typing import Any

from torchbolt.trainer.data import has_len
from torchbolt.utilities.apply_func import extract_batch_size

__all__ = ["extract_batch_size", "has_len", "sized_len", "suggested_max_num_workers"]


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
