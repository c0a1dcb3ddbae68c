"""Run code, print and warn on the global rank-0 process only (`rank_zero_only`, `rank_zero_info`, ...).

The rank comes from the environment the launcher set (RANK, LOCAL_RANK, SLURM_PROCID,
JSM_NAMESPACE_RANK, first one set wins; 0 when none is) and can be overwritten by setting
`rank_zero_only.rank` (the distributed strategies do, once the process group is up).
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["LightningDeprecationWarning", "WarningCache", "rank_prefixed_message", "rank_zero_debug",
           "rank_zero_deprecation", "rank_zero_info", "rank_zero_only", "rank_zero_warn"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Checked in this order: LOCAL_RANK before SLURM_PROCID, since SLURM sets the latter even when it does
#: not launch the processes itself.
RANK_ENV_VARS = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


class LightningDeprecationWarning(DeprecationWarning):
    """A deprecated Lightning API was used (the category of `rank_zero_deprecation`)."""


def rank_from_env() -> int | None:
    """The process's global rank from the launcher's environment, or None when no variable is set."""
    for key in RANK_ENV_VARS:
        value = os.environ.get(key)
        if value is not None:
            return int(value)
    return None


class _RankZeroOnly:
    """The `rank_zero_only` decorator; its `rank` attribute is the rank it compares against."""

    def __init__(self) -> None:
        self.rank: int = rank_from_env() or 0

    def __call__(self, fn: Callable[..., T], default: T | None = None) -> Callable[..., T | None]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> T | None:
            rank = self.rank
            if rank is None:
                raise RuntimeError("rank_zero_only.rank is None: set it to this process's global rank before use")
            return fn(*args, **kwargs) if rank == 0 else default

        return wrapped


#: Decorator: the wrapped function runs only when `rank_zero_only.rank == 0` (else returns `default`).
rank_zero_only = _RankZeroOnly()


@rank_zero_only
def rank_zero_debug(*args: Any, stacklevel: int = 4, **kwargs: Any) -> None:
    """`logging.debug` on rank 0 only."""
    log.debug(*args, stacklevel=stacklevel, **kwargs)


@rank_zero_only
def rank_zero_info(*args: Any, stacklevel: int = 4, **kwargs: Any) -> None:
    """`logging.info` on rank 0 only."""
    log.info(*args, stacklevel=stacklevel, **kwargs)


@rank_zero_only
def rank_zero_warn(message: str | Warning, stacklevel: int = 4, **kwargs: Any) -> None:
    """`warnings.warn` on rank 0 only."""
    warnings.warn(message, stacklevel=stacklevel, **kwargs)


def rank_zero_deprecation(message: str | Warning, stacklevel: int = 5, **kwargs: Any) -> None:
    """A deprecation warning (LightningDeprecationWarning by default) on rank 0 only."""
    category = kwargs.pop("category", LightningDeprecationWarning)
    rank_zero_warn(message, stacklevel=stacklevel, category=category, **kwargs)


def rank_prefixed_message(message: str, rank: int | None) -> str:
    """`message` prefixed with `[rank: N] ` when a rank is given."""
    return message if rank is None else f"[rank: {rank}] {message}"


class WarningCache(set):  # type: ignore[type-arg]
    """Warn (on rank 0) once per distinct message."""

    def warn(self, message: str, stacklevel: int = 5, **kwargs: Any) -> None:
        if message not in self:
            self.add(message)
            rank_zero_warn(message, stacklevel=stacklevel, **kwargs)

    def deprecation(self, message: str, stacklevel: int = 6, **kwargs: Any) -> None:
        if message not in self:
            self.add(message)
            rank_zero_deprecation(message, stacklevel=stacklevel, **kwargs)

    def info(self, message: str, stacklevel: int = 5, **kwargs: Any) -> None:
        if message not in self:
            self.add(message)
            rank_zero_info(message, stacklevel=stacklevel, **kwargs)
