"""`grad_norm`: the gradient norm of each parameter and of all of them, ready for `self.log_dict`."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["grad_norm"]


def grad_norm(module: nn.Module, norm_type: float | int | str, group_separator: str = "/") -> dict[str, float]:
    """Norms of the gradients of `module`'s parameters, keyed `grad_{p}_norm{sep}{name}`, plus the total
    as `grad_{p}_norm_total` (the norm of the per-parameter norms). Parameters without a gradient are left out.

    Call it in `on_before_optimizer_step` and pass the result to `self.log_dict`.
    """
    p = float(norm_type)
    if p <= 0:
        raise ValueError(f"grad_norm: norm_type must be a positive number or 'inf', got {norm_type!r}")
    norms = {f"grad_{p}_norm{group_separator}{name}": param.grad.data.norm(p)
             for name, param in module.named_parameters() if param.grad is not None}
    if norms:
        total = torch.tensor(list(norms.values())).norm(p)
        norms[f"grad_{p}_norm_total"] = total
    return norms
