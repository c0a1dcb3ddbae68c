"""Memory helpers people call from their code: detach collections, recognise out-of-memory errors, free
cached CUDA memory, and the size of a model."""

from __future__ import annotations

import gc
from typing import Any

import torch
from torch import nn

from torchbolt.utilities.apply_func import apply_to_collection

__all__ = ["garbage_collection_cuda", "get_model_size_mb", "is_cuda_out_of_memory", "is_cudnn_snafu",
           "is_oom_error", "is_out_of_cpu_memory", "recursive_detach"]


def recursive_detach(in_dict: Any, to_cpu: bool = False) -> Any:
    """Every tensor in `in_dict` (any nesting) detached, and moved to the CPU when `to_cpu`."""
    def detach(t: torch.Tensor) -> torch.Tensor:
        t = t.detach()
        return t.cpu() if to_cpu else t

    return apply_to_collection(in_dict, torch.Tensor, detach)


def is_cuda_out_of_memory(exception: BaseException) -> bool:
    """Whether `exception` is CUDA running out of memory."""
    return (isinstance(exception, (RuntimeError, torch.cuda.OutOfMemoryError)) and len(exception.args) == 1
            and "CUDA" in str(exception.args[0]) and "out of memory" in str(exception.args[0]))


def is_cudnn_snafu(exception: BaseException) -> bool:
    """Whether `exception` is cuDNN failing for lack of memory (reported as CUDNN_STATUS_NOT_SUPPORTED)."""
    return (isinstance(exception, RuntimeError) and len(exception.args) == 1
            and "cuDNN error: CUDNN_STATUS_NOT_SUPPORTED." in str(exception.args[0]))


def is_out_of_cpu_memory(exception: BaseException) -> bool:
    """Whether `exception` is the CPU allocator failing."""
    return (isinstance(exception, RuntimeError) and len(exception.args) == 1
            and "DefaultCPUAllocator: can't allocate memory" in str(exception.args[0]))


def is_oom_error(exception: BaseException) -> bool:
    """Whether `exception` means the process ran out of (CUDA, cuDNN or CPU) memory."""
    return is_cuda_out_of_memory(exception) or is_cudnn_snafu(exception) or is_out_of_cpu_memory(exception)


def garbage_collection_cuda() -> None:
    """Collect garbage and release CUDA's cached blocks (a no-op for CUDA without a GPU)."""
    gc.collect()
    if not torch.cuda.is_available():
        return
    try:
        torch.cuda.empty_cache()
    except RuntimeError as err:
        if not is_oom_error(err):  # emptying the cache can itself run out of memory; that is fine
            raise


def get_model_size_mb(model: nn.Module) -> float:
    """Size of `model`'s state dict in megabytes (1e6 bytes), as when saved."""
    total = 0
    for value in model.state_dict().values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
    return total / 1e6
