"""Layer synchronization plugins: `Trainer(sync_batchnorm=True)` or `plugins=[TorchSyncBatchNorm()]`."""

from __future__ import annotations

import torch
from torch import nn


class _BatchNormXd(nn.modules.batchnorm._BatchNorm):
    """Plain batch norm for any input rank: SyncBatchNorm does not record whether it was 1d, 2d or 3d."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")


class LayerSync:
    """Interface: swap layers for versions that synchronize across processes, and swap them back."""

    def apply(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError

    def revert(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError


class TorchSyncBatchNorm(LayerSync):
    """Replaces every BatchNorm layer with `torch.nn.SyncBatchNorm` (statistics over all processes)."""

    def apply(self, model: nn.Module) -> nn.Module:
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def revert(self, model: nn.Module) -> nn.Module:
        """Turn SyncBatchNorm layers back into plain BatchNorm (for single-process use after training)."""
        converted = model
        if isinstance(model, torch.nn.SyncBatchNorm):
            converted = _BatchNormXd(model.num_features, model.eps, model.momentum, model.affine, model.track_running_stats)
            if model.affine:
                with torch.no_grad():
                    converted.weight = model.weight
                    converted.bias = model.bias
            converted.running_mean = model.running_mean
            converted.running_var = model.running_var
            converted.num_batches_tracked = model.num_batches_tracked
            converted.training = model.training
        for name, child in model.named_children():
            converted.add_module(name, self.revert(child))
        return converted

    def __repr__(self) -> str:
        return "TorchSyncBatchNorm()"
