"""Hardware choice, resolved once by one pure function into a frozen plan.

`resolve_plan(accelerator, devices, strategy, precision, num_nodes, env)` is a table-testable function:
the same inputs always give the same plan or the same error. This build runs on one CPU device; any
other choice gets an error that says so and what to pass instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torchbolt.catalog import ACCELERATORS, PRECISION_ALIASES, PRECISIONS, REMOVED_STRATEGIES, STRATEGIES
from torchbolt.utilities.exceptions import TrainerArgumentError, UnsupportedHardwareError

#: Precisions this build implements on CPU.
SUPPORTED_PRECISIONS = ("32-true", "64-true", "bf16-mixed", "bf16-true", "16-true")
_CPU_ONLY = "this build of torchbolt runs on one CPU device"


@dataclass(frozen=True)
class HardwarePlan:
    """Where and how a run executes: accelerator, device, process layout, numeric precision."""

    accelerator: str = "cpu"
    device: str = "cpu"
    num_devices: int = 1
    num_nodes: int = 1
    strategy: str = "single_device"
    precision: str = "32-true"

    @property
    def world_size(self) -> int:
        return self.num_devices * self.num_nodes


def _parse_devices(devices: Any) -> int:
    if isinstance(devices, bool):
        raise TrainerArgumentError(
            f"Trainer(devices={devices!r}) is invalid: pass an int count, -1, a list of indices, or 'auto'."
        )
    if isinstance(devices, str):
        text = devices.strip()
        if text == "auto":
            return 1
        if "," in text:
            parts = [p for p in text.split(",") if p.strip()]
            return len(parts)
        try:
            devices = int(text)
        except ValueError:
            raise TrainerArgumentError(
                f"Trainer(devices={devices!r}) is invalid: pass an int count, -1, a list like [0], a string like "
                "'0,1', or 'auto'."
            ) from None
    if isinstance(devices, (list, tuple)):
        if not devices:
            raise UnsupportedHardwareError(
                "Trainer(devices=[]) selects no device; pass devices=1 (or 'auto') to run on the CPU."
            )
        return len(devices)
    if isinstance(devices, int):
        if devices == 0 or devices < -1:
            raise UnsupportedHardwareError(
                f"Trainer(devices={devices}) value is not a valid input using cpu accelerator: pass 1, -1 or 'auto'."
            )
        return 1 if devices == -1 else devices
    raise TrainerArgumentError(
        f"Trainer(devices={devices!r}) has type {type(devices).__name__}; pass an int, a list of ints or a string."
    )


def _resolve_precision(precision: Any) -> str:
    if precision is None:
        return "32-true"
    if isinstance(precision, bool):
        raise TrainerArgumentError(f"Precision {precision!r} is invalid. Allowed precision values: {PRECISIONS}.")
    if precision in PRECISION_ALIASES and not (isinstance(precision, str) and precision in PRECISIONS):
        resolved = PRECISION_ALIASES[precision]
        if str(precision) in ("16", "bf16"):
            warnings.warn(
                f"precision={precision!r} is supported for historical reasons but its usage is discouraged; "
                f"write precision={resolved!r}.",
                stacklevel=4,
            )
        precision = resolved
    if precision not in PRECISIONS:
        raise TrainerArgumentError(
            f"Precision {precision!r} is invalid. Allowed precision values: {PRECISIONS} (or 16, 32, 64, 'bf16')."
        )
    if precision == "16-mixed":
        warnings.warn(
            "precision='16-mixed' is not supported on CPU; using precision='bf16-mixed' instead.",
            stacklevel=4,
        )
        precision = "bf16-mixed"
    if precision not in SUPPORTED_PRECISIONS:
        raise UnsupportedHardwareError(
            f"Trainer(precision={precision!r}) is not available: {_CPU_ONLY}, which supports {SUPPORTED_PRECISIONS}."
        )
    return str(precision)


def resolve_plan(
    accelerator: Any = "auto",
    devices: Any = "auto",
    strategy: Any = "auto",
    precision: Any = None,
    num_nodes: int = 1,
    env: Mapping[str, Any] | None = None,
) -> HardwarePlan:
    """Resolve the Trainer's hardware arguments into a HardwarePlan, or raise an error naming the fix.

    `env` describes the machine (e.g. {"cuda_available": True}); it only changes the wording of errors
    here, since every plan this build can run is a CPU plan.
    """
    env = dict(env or {})
    if not isinstance(accelerator, str):
        raise UnsupportedHardwareError(
            f"Trainer(accelerator={type(accelerator).__name__}(...)): custom Accelerator objects are not supported; "
            f"{_CPU_ONLY}. Pass accelerator='cpu' or 'auto'."
        )
    acc = accelerator.lower()
    if acc not in ACCELERATORS:
        raise TrainerArgumentError(
            f"You selected an invalid accelerator name: `accelerator={accelerator!r}`. Available names are: "
            f"{', '.join(a for a in ACCELERATORS)}."
        )
    if acc not in ("auto", "cpu"):
        seen = " (a GPU is present on this machine, but" if env.get("cuda_available") else " ("
        raise UnsupportedHardwareError(
            f"Trainer(accelerator={accelerator!r}) is not available{seen}{_CPU_ONLY}). Pass accelerator='cpu' or "
            "'auto'."
        )
    if isinstance(strategy, str):
        strat = strategy.lower()
        if strat in REMOVED_STRATEGIES:
            raise TrainerArgumentError(
                f"Trainer(strategy={strategy!r}) was removed in Lightning 2.0; its replacement is "
                f"strategy={REMOVED_STRATEGIES[strat]!r} (and {_CPU_ONLY}, so use strategy='auto' here)."
            )
        if strat not in STRATEGIES:
            raise TrainerArgumentError(
                f"You selected an invalid strategy name: `strategy={strategy!r}`. Available names are: "
                f"{', '.join(STRATEGIES)}."
            )
        if strat not in ("auto", "single_device"):
            raise UnsupportedHardwareError(
                f"Trainer(strategy={strategy!r}) is not available: {_CPU_ONLY} without distribution. Pass "
                "strategy='auto'."
            )
    else:
        raise UnsupportedHardwareError(
            f"Trainer(strategy={type(strategy).__name__}(...)): custom Strategy objects are not supported; "
            f"{_CPU_ONLY}. Pass strategy='auto'."
        )
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise TrainerArgumentError(f"Trainer(num_nodes={num_nodes!r}) must be an int >= 1.")
    if num_nodes != 1:
        raise UnsupportedHardwareError(f"Trainer(num_nodes={num_nodes}) is not available: {_CPU_ONLY}. Pass num_nodes=1.")
    count = _parse_devices(devices)
    if count != 1:
        raise UnsupportedHardwareError(
            f"Trainer(devices={devices!r}) asks for {count} devices, which would need multi-process training; "
            f"{_CPU_ONLY}. Pass devices=1 or 'auto'."
        )
    return HardwarePlan(precision=_resolve_precision(precision))
