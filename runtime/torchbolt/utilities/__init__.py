"""Helpers shared by the runtime: exceptions, seeding, collection traversal, hyper-parameters."""

from __future__ import annotations

from torchbolt.utilities.exceptions import MisconfigurationException
from torchbolt.utilities.hparams import AttributeDict

__all__ = ["AttributeDict", "MisconfigurationException", "seed_everything"]


def __getattr__(name: str) -> object:
    # seed_everything imports torch; keep `torchbolt.utilities` itself torch-free.
    if name == "seed_everything":
        from torchbolt.utilities.seed import seed_everything

        return seed_everything
    raise AttributeError(f"module 'torchbolt.utilities' has no attribute {name!r}")
