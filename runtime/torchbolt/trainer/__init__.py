"""The Trainer and its parts: argument validation, hardware plan, hook dispatch, loops, run state."""

from __future__ import annotations

from typing import Any

__all__ = ["Trainer"]


def __getattr__(name: str) -> Any:
    if name == "Trainer":
        from torchbolt.trainer.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'torchbolt.trainer' has no attribute {name!r}")
