"""The Trainer and its parts: argument validation, hardware plan, hook dispatch, loops, run state."""

from __future__ import annotations

from typing import Any

__all__ = ["Trainer", "seed_everything"]


def __getattr__(name: str) -> Any:
    if name == "Trainer":
        from torchbolt.trainer.trainer import Trainer

        return Trainer
    if name == "seed_everything":
        from torchbolt.utilities.seed import seed_everything

        return seed_everything
    from torchbolt.compat.unsupported import module_getattr  # Lightning's names get their alternative

    return module_getattr(__name__)(name)
