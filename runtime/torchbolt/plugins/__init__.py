"""Plugins at Lightning's import path: precision, checkpoint IO, layer sync and cluster environments."""

from __future__ import annotations

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from torchbolt.plugins.io import AsyncCheckpointIO, CheckpointIO, TorchCheckpointIO
from torchbolt.plugins.layer_sync import LayerSync, TorchSyncBatchNorm
from torchbolt.plugins.precision import DoublePrecision, HalfPrecision, MixedPrecision, Precision

__all__ = [
    "AsyncCheckpointIO", "CheckpointIO", "ClusterEnvironment", "DoublePrecision", "HalfPrecision",
    "LayerSync", "LightningEnvironment", "MixedPrecision", "Precision", "SLURMEnvironment",
    "TorchCheckpointIO", "TorchElasticEnvironment", "TorchSyncBatchNorm",
]


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
