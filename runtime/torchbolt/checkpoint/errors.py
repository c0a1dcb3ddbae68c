"""Exceptions raised when a checkpoint cannot be written, found, trusted or read."""

from __future__ import annotations

#: Environment variable that makes every checkpoint load trusted (full pickle), for files you made yourself.
TRUST_ENV_VAR = "TORCHBOLT_TRUST_CHECKPOINTS"


class CheckpointError(Exception):
    """Base class of torchbolt's checkpoint errors."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path does not exist."""


class CorruptCheckpointError(CheckpointError):
    """The file exists but is not a readable checkpoint (truncated, empty, or not a torch.save file)."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint references Python objects outside the allow-list, so loading it could run code.

    `globals_found` lists the offending `module.name` references (empty when they could not be listed).
    """

    def __init__(self, message: str, globals_found: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.globals_found = globals_found
