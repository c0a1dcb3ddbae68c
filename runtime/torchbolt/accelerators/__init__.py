"""Accelerators at Lightning's import path (`lightning.pytorch.accelerators`)."""

from __future__ import annotations

from torchbolt.accelerators.accelerator import (
    Accelerator,
    CPUAccelerator,
    CUDAAccelerator,
    MPSAccelerator,
    find_usable_cuda_devices,
)

__all__ = ["Accelerator", "CPUAccelerator", "CUDAAccelerator", "MPSAccelerator", "find_usable_cuda_devices"]
