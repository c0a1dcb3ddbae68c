"""The Trainer's precision plugins live in `torchbolt.plugins.precision`; this module keeps the old import path."""

from __future__ import annotations

from torchbolt.plugins.precision import (
    DoublePrecision,
    HalfPrecision,
    MixedPrecision,
    Precision,
    precision_plugin_for,
)

__all__ = ["DoublePrecision", "HalfPrecision", "MixedPrecision", "Precision", "precision_plugin_for"]
