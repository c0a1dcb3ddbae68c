"""Numeric precision on CPU: dtype conversion of the module and batches, and autocast around steps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from torchbolt.utilities.apply_func import apply_to_collection

_DTYPES = {"64-true": torch.float64, "bf16-true": torch.bfloat16, "16-true": torch.float16}


class Precision:
    """What a precision setting means for the module, the batches and the step methods."""

    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.dtype: torch.dtype | None = _DTYPES.get(precision)
        self.autocast = precision == "bf16-mixed"
        # The fast path: nothing to convert, nothing to wrap.
        self.is_noop = self.dtype is None and not self.autocast

    def state_dict(self) -> dict[str, Any]:
        """State saved in checkpoints under the class name when non-empty (none for these precisions)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (nothing to restore for these precisions)."""

    def convert_module(self, module: nn.Module) -> nn.Module:
        """Cast the module's floating parameters for '*-true' precisions."""
        if self.dtype is not None:
            return module.to(self.dtype)
        return module

    def convert_input(self, batch: Any) -> Any:
        """Cast floating tensors of the batch for '*-true' precisions."""
        if self.dtype is None:
            return batch
        dtype = self.dtype
        return apply_to_collection(batch, Tensor, lambda t: t.to(dtype) if torch.is_floating_point(t) else t)

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        """Autocast (bf16) around step methods for 'bf16-mixed'; nothing otherwise."""
        if self.autocast:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield
