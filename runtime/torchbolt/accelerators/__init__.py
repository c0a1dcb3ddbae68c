"""Accelerators at Lightning's import path (`lightning.pytorch.accelerators`)."""

from __future__ import annotations

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.accelerators.accelerator import (
    Accelerator,
    CPUAccelerator,
    CUDAAccelerator,
    MPSAccelerator,
    find_usable_cuda_devices,
)

__all__ = ["Accelerator", "CPUAccelerator", "CUDAAccelerator", "MPSAccelerator", "find_usable_cuda_devices"]


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
