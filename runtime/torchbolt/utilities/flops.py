"""`measure_flops`: count the floating-point operations of a forward (and backward) pass."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["measure_flops"]


def measure_flops(model: nn.Module, forward_fn: Callable[[], torch.Tensor],
                  loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> int:
    """FLOPs of `forward_fn()` (plus the backward of `loss_fn(output)` when given), counted by torch's
    FlopCounterMode. Build the model on the meta device (`torch.device("meta")`) to count without memory.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        if loss_fn is None:
            forward_fn()
        else:
            loss_fn(forward_fn()).backward()
    return int(counter.get_total_flops())


