"""Checkpoint files: atomic writes and safe (code-free) loading. See `torchbolt.checkpoint.io`."""

from __future__ import annotations

from torchbolt.checkpoint.errors import (
    TRUST_ENV_VAR,
    CheckpointError,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
)
from torchbolt.checkpoint.io import atomic_save, atomic_symlink, safe_load

__all__ = [
    "TRUST_ENV_VAR",
    "CheckpointError",
    "CheckpointNotFoundError",
    "CorruptCheckpointError",
    "UnsafeCheckpointError",
    "atomic_save",
    "atomic_symlink",
    "safe_load",
]
