"""The Tuner: `lr_find` (a learning-rate range test) and `scale_batch_size` (the largest batch that fits)."""

from __future__ import annotations

from torchbolt.tuner.tuning import Tuner

__all__ = ["Tuner"]
