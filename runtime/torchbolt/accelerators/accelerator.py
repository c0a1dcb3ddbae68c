"""Accelerators: what kind of device a run uses, how many there are, and how to reach them.

An accelerator answers hardware questions only (is it here, how many, which `torch.device`); moving
modules and batches is the strategy's job and numeric formats are the precision plugin's.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from torchbolt.utilities.exceptions import MisconfigurationException


class Accelerator:
    """Base class: one kind of device. Subclass it to describe hardware torchbolt does not know."""

    #: The registry name (`Trainer(accelerator=name)`).
    name = "base"

    def setup_device(self, device: torch.device) -> None:
        """Make `device` the current one for this process (CUDA sets the current device)."""

    def teardown(self) -> None:
        """Release what setup_device took."""

    @staticmethod
    def parse_devices(devices: Any) -> Any:
        """Turn the Trainer's `devices` value into what this accelerator needs (a count or indices)."""
        raise NotImplementedError

    @staticmethod
    def get_parallel_devices(devices: Any) -> list[torch.device]:
        """One `torch.device` per local process."""
        raise NotImplementedError

    @staticmethod
    def auto_device_count() -> int:
        """How many devices `devices="auto"` means."""
        raise NotImplementedError

    @staticmethod
    def is_available() -> bool:
        """Whether this machine has the hardware."""
        raise NotImplementedError

    def get_device_stats(self, device: torch.device | str) -> dict[str, Any]:
        """Device statistics for monitoring callbacks (empty when the device has none)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CPUAccelerator(Accelerator):
    """The CPU. `devices=N` means N processes on this machine."""

    name = "cpu"

    def setup_device(self, device: torch.device) -> None:
        if device.type != "cpu":
            raise MisconfigurationException(f"CPUAccelerator cannot run on {device}; use accelerator='cuda' for GPUs.")

    @staticmethod
    def parse_devices(devices: Any) -> int:
        return int(devices)

    @staticmethod
    def get_parallel_devices(devices: Any) -> list[torch.device]:
        count = devices if isinstance(devices, int) else len(devices)
        return [torch.device("cpu")] * count

    @staticmethod
    def auto_device_count() -> int:
        return 1

    @staticmethod
    def is_available() -> bool:
        return True


class CUDAAccelerator(Accelerator):
    """NVIDIA GPUs through torch.cuda."""

    name = "cuda"

    def setup_device(self, device: torch.device) -> None:
        if device.type != "cuda":
            raise MisconfigurationException(f"CUDAAccelerator cannot run on {device}; use accelerator='cpu'.")
        torch.cuda.set_device(device)

    def teardown(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @staticmethod
    def parse_devices(devices: Any) -> list[int]:
        return list(devices)

    @staticmethod
    def get_parallel_devices(devices: Any) -> list[torch.device]:
        return [torch.device("cuda", i) for i in devices]

    @staticmethod
    def auto_device_count() -> int:
        return torch.cuda.device_count()

    @staticmethod
    def is_available() -> bool:
        return torch.cuda.is_available() and torch.cuda.device_count() > 0

    def get_device_stats(self, device: torch.device | str) -> dict[str, Any]:
        return dict(torch.cuda.memory_stats(device))


class MPSAccelerator(Accelerator):
    """Apple-silicon GPUs through torch.backends.mps (one device)."""

    name = "mps"

    def setup_device(self, device: torch.device) -> None:
        if device.type != "mps":
            raise MisconfigurationException(f"MPSAccelerator cannot run on {device}; use accelerator='cpu'.")

    @staticmethod
    def parse_devices(devices: Any) -> list[int]:
        return list(devices)

    @staticmethod
    def get_parallel_devices(devices: Any) -> list[torch.device]:
        return [torch.device("mps", i) for i in devices]

    @staticmethod
    def auto_device_count() -> int:
        return 1

    @staticmethod
    def is_available() -> bool:
        mps = getattr(torch.backends, "mps", None)
        return bool(mps is not None and mps.is_available())


def find_usable_cuda_devices(num_devices: int = -1) -> list[int]:
    """Indices of up to `num_devices` CUDA devices that can allocate memory now (-1: all of them).

    A device held in exclusive mode by another process fails the probe allocation and is skipped; asking
    for more usable devices than there are raises an error naming how many were found.
    """
    if num_devices == 0:
        return []
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible == 0:
        if num_devices == -1:
            return []
        raise MisconfigurationException(
            f"find_usable_cuda_devices({num_devices}) found no CUDA device on this machine "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}, torch {torch.__version__})."
        )
    usable: list[int] = []
    for index in range(visible):
        try:
            torch.tensor(0, device=torch.device("cuda", index))
        except RuntimeError:
            continue
        usable.append(index)
        if num_devices != -1 and len(usable) == num_devices:
            break
    if num_devices != -1 and len(usable) < num_devices:
        raise MisconfigurationException(
            f"find_usable_cuda_devices({num_devices}) found only {len(usable)} usable of {visible} CUDA devices "
            f"({usable}); the others are busy or in exclusive mode. Ask for fewer devices."
        )
    return usable


ACCELERATOR_CLASSES: dict[str, type[Accelerator]] = {
    "cpu": CPUAccelerator,
    "cuda": CUDAAccelerator,
    "mps": MPSAccelerator,
}
