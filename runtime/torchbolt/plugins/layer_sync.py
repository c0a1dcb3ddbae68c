"""Layer synchronization plugins: `Trainer(sync_batchnorm=True)` or `plugins=[TorchSyncBatchNorm()]`.

On GPUs the batch-norm layers become torch's `nn.SyncBatchNorm`. Its training forward refuses CPU tensors
(the kernels it calls exist for GPUs only), so layers that live on the CPU become `CPUSyncBatchNorm`, whose
training forward combines the per-channel statistics of every process with torch.distributed collectives
(gloo). Both keep the parameter and buffer names of plain batch norm, so their checkpoints load into a model
without synchronization.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


class _BatchNormXd(nn.modules.batchnorm._BatchNorm):
    """Plain batch norm for any input rank: SyncBatchNorm does not record whether it was 1d, 2d or 3d."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")


def _channel_view(vector: Tensor, like: Tensor) -> Tensor:
    """A per-channel vector shaped to broadcast over an (N, C, ...) tensor."""
    return vector.view(1, -1, *([1] * (like.dim() - 2)))


class CPUSyncBatchNormFunction(torch.autograd.Function):
    """Batch norm in training mode with statistics over every process of `process_group` (CPU tensors).

    Forward: each process sends its per-channel (mean, centered sum of squares, count) in one all_gather;
    every process combines them the same way (Chan's parallel formula, in float64, so that neither a
    large mean nor unequal batch sizes cost precision), normalizes with the global mean and biased
    variance, and moves the running statistics towards the global mean and unbiased variance (as
    nn.SyncBatchNorm does). Backward: one all_reduce of the per-channel sums of grad and grad * x_hat gives
    the input gradient of the loss summed over processes; the weight and bias gradients stay local
    (DistributedDataParallel averages them like any parameter's).
    """

    @staticmethod
    def forward(ctx: Any, input: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                running_var: Tensor | None, eps: float, momentum: float, process_group: Any,
                world_size: int) -> Tensor:
        x = input.contiguous()
        channels = x.size(1)
        dims = [d for d in range(x.dim()) if d != 1]
        count = x.numel() // channels
        compute = x if x.dtype in (torch.float32, torch.float64) else x.float()
        if count > 0:
            var, mean = torch.var_mean(compute, dim=dims, correction=0)
            local = torch.cat([mean.double(), (var.double() * count), x.new_full((1,), count, dtype=torch.float64)])
        else:  # an empty batch still takes part in the collective, with a zero count
            local = torch.zeros(2 * channels + 1, dtype=torch.float64, device=x.device)
        gathered = [torch.empty_like(local) for _ in range(world_size)]
        dist.all_gather(gathered, local, group=process_group)
        table = torch.stack(gathered)
        means, m2s, counts = table[:, :channels], table[:, channels:2 * channels], table[:, 2 * channels]
        total = counts.sum()
        if total <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got {int(total)} over all processes"
            )
        global_mean = (counts[:, None] * means).sum(0) / total
        m2 = (m2s + counts[:, None] * (means - global_mean) ** 2).sum(0)
        global_var = m2 / total
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_((global_mean * momentum).to(running_mean.dtype))
                unbiased = global_var * (total / (total - 1))
                running_var.mul_(1 - momentum).add_((unbiased * momentum).to(running_var.dtype))
        mean_c = global_mean.to(compute.dtype)
        invstd = torch.rsqrt(global_var + eps).to(compute.dtype)
        x_hat = (compute - _channel_view(mean_c, x)) * _channel_view(invstd, x)
        out = x_hat
        if weight is not None:
            out = out * _channel_view(weight.to(compute.dtype), x)
        if bias is not None:
            out = out + _channel_view(bias.to(compute.dtype), x)
        ctx.save_for_backward(x_hat, weight, invstd)
        ctx.has_bias = bias is not None
        ctx.param_dtype = input.dtype if weight is None else weight.dtype
        ctx.total = float(total)
        ctx.process_group, ctx.world_size = process_group, world_size
        return out.to(input.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        x_hat, weight, invstd = ctx.saved_tensors
        grad = grad_output.contiguous().to(x_hat.dtype)
        dims = [d for d in range(grad.dim()) if d != 1]
        channels = grad.size(1)
        sum_dy = grad.sum(dims)
        sum_dy_xhat = (grad * x_hat).sum(dims)
        grad_weight = sum_dy_xhat.clone() if weight is not None and ctx.needs_input_grad[1] else None
        grad_bias = sum_dy.clone() if ctx.has_bias and ctx.needs_input_grad[2] else None
        grad_input = None
        if ctx.needs_input_grad[0]:
            sums = torch.cat([sum_dy, sum_dy_xhat])  # one collective for both sums
            dist.all_reduce(sums, group=ctx.process_group)
            mean_dy = _channel_view(sums[:channels] / ctx.total, grad)
            mean_dy_xhat = _channel_view(sums[channels:] / ctx.total, grad)
            scale = invstd if weight is None else invstd * weight.to(invstd.dtype)
            grad_input = (_channel_view(scale, grad) * (grad - mean_dy - x_hat * mean_dy_xhat)).to(grad_output.dtype)
        if grad_weight is not None:
            grad_weight = grad_weight.to(ctx.param_dtype)
        if grad_bias is not None:
            grad_bias = grad_bias.to(ctx.param_dtype)
        return grad_input, grad_weight, grad_bias, None, None, None, None, None, None


def _check_cpu_backend(process_group: Any) -> None:
    backend = str(dist.get_backend(process_group))
    if "gloo" not in backend and "mpi" not in backend:
        raise RuntimeError(
            f"Synchronized batch norm on CPU tensors needs a process group that communicates CPU tensors (gloo), "
            f"but this one uses {backend!r}. Use process_group_backend='gloo' (the default on CPU), or put the "
            "model on GPUs."
        )


class CPUSyncBatchNorm(_BatchNormXd):
    """Batch norm whose training statistics cover every process of the group, for CPU tensors (gloo).

    Not a subclass of `nn.SyncBatchNorm`: DistributedDataParallel refuses those on CPU modules. It has plain
    batch norm's parameters and buffers (same state-dict keys). Eval mode, a single process, or no process
    group: plain batch norm.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any = None, device: Any = None, dtype: Any = None,
                 *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype,
                         bias=bias)
        self.process_group = process_group

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        process_group = self.process_group or dist.group.WORLD
        world_size = dist.get_world_size(process_group) if dist.is_available() and dist.is_initialized() else 1
        if not (self.training and world_size > 1):
            return super().forward(input)  # plain batch norm, with its own running-statistics bookkeeping
        if input.size(1) == 0:
            raise ValueError("CPUSyncBatchNorm number of input channels should be non-zero")
        if input.device.type == "cpu":
            _check_cpu_backend(process_group)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as plain batch norm
                factor = 1.0 / float(self.num_batches_tracked)
        track = self.track_running_stats
        return CPUSyncBatchNormFunction.apply(
            input, self.weight, self.bias, self.running_mean if track else None, self.running_var if track else None,
            self.eps, factor, process_group, world_size,
        )


def _on_cpu(module: nn.Module) -> bool:
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor is None or tensor.device.type == "cpu"


def _take_state(source: nn.Module, target: nn.Module) -> nn.Module:
    """`target` (a new batch-norm layer) sharing `source`'s parameters, buffers and mode."""
    if source.affine:
        with torch.no_grad():
            target.weight = source.weight
            target.bias = source.bias
    target.running_mean = source.running_mean
    target.running_var = source.running_var
    target.num_batches_tracked = source.num_batches_tracked
    target.training = source.training
    return target


def convert_to_sync_batchnorm(module: nn.Module, process_group: Any = None) -> nn.Module:
    """`module` with every batch-norm layer replaced by a synchronized one sharing its parameters and buffers:
    `CPUSyncBatchNorm` for layers on the CPU, torch's `nn.SyncBatchNorm` elsewhere (already synchronized
    layers are kept). Returns the new layer when `module` itself is one."""
    converted = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, (nn.SyncBatchNorm,
                                                                                        CPUSyncBatchNorm)):
        cls = CPUSyncBatchNorm if _on_cpu(module) else nn.SyncBatchNorm
        converted = _take_state(module, cls(module.num_features, module.eps, module.momentum, module.affine,
                                            module.track_running_stats, process_group, bias=module.bias is not None))
        if hasattr(module, "qconfig"):
            converted.qconfig = module.qconfig
    for name, child in module.named_children():
        converted.add_module(name, convert_to_sync_batchnorm(child, process_group))
    return converted


class LayerSync:
    """Interface: swap layers for versions that synchronize across processes, and swap them back."""

    def apply(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError

    def revert(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError


class TorchSyncBatchNorm(LayerSync):
    """Replaces every BatchNorm layer with a synchronized one (statistics over all processes): torch's
    `nn.SyncBatchNorm` on GPUs, `CPUSyncBatchNorm` on the CPU."""

    def apply(self, model: nn.Module) -> nn.Module:
        return convert_to_sync_batchnorm(model)

    def revert(self, model: nn.Module) -> nn.Module:
        """Turn SyncBatchNorm layers back into plain BatchNorm (for single-process use after training)."""
        converted = model
        if isinstance(model, (nn.SyncBatchNorm, CPUSyncBatchNorm)):
            converted = _take_state(model, _BatchNormXd(model.num_features, model.eps, model.momentum, model.affine,
                                                        model.track_running_stats))
        for name, child in model.named_children():
            converted.add_module(name, self.revert(child))
        return converted

    def __repr__(self) -> str:
        return "TorchSyncBatchNorm()"
