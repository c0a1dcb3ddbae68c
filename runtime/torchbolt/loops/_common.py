"""Small pieces every loop shares: RNG snapshots, train/eval mode memory, step-signature checks."""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from torchbolt.utilities.exceptions import MisconfigurationException

INF = float("inf")


def reached(current: int, maximum: int) -> bool:
    """Whether `current` hit a limit where -1 means "no limit"."""
    return maximum != -1 and current >= maximum


def takes_positional(fn: Callable[..., Any], count: int) -> bool:
    """Whether `fn` accepts at least `count` positional arguments (or *args)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = 0
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= count


def capture_rng() -> dict[str, Any]:
    """The global RNG states (torch, Python, NumPy) in a form safe to store in checkpoints."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        import numpy as np

        np_state: Any = np.random.get_state()
        kind, keys, pos, has_gauss, cached = np_state
        state["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached))
    except ImportError:
        pass
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore RNG states captured by `capture_rng`."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]) if isinstance(py, (list, tuple)) else py)
    if "numpy" in state:
        try:
            import numpy as np

            kind, keys, pos, has_gauss, cached = state["numpy"]
            np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
        except ImportError:
            pass


class ModuleModes:
    """Remembers the train/eval mode of every submodule so evaluation can restore it exactly."""

    def __init__(self) -> None:
        self._modes: dict[torch.nn.Module, bool] = {}

    def capture(self, module: torch.nn.Module) -> None:
        self._modes = {m: m.training for m in module.modules()}

    def restore(self, module: torch.nn.Module) -> None:
        for m in module.modules():
            if m in self._modes:
                m.training = self._modes[m]
        self._modes = {}

    def forget(self) -> None:
        self._modes = {}


def split_training_output(out: Any) -> tuple[Tensor | None, dict[str, Any]]:
    """(loss, extra outputs) from what training_step returned under automatic optimization."""
    if out is None:
        return None, {}
    if isinstance(out, Tensor):
        return out, {}
    if isinstance(out, dict):
        loss = out.get("loss")
        if loss is None:
            raise MisconfigurationException(
                "In automatic_optimization, when `training_step` returns a dict, the 'loss' key needs to be present "
                f"(keys: {sorted(out)})."
            )
        return loss, {k: v for k, v in out.items() if k != "loss"}
    raise MisconfigurationException(
        "In automatic optimization, `training_step` must return a Tensor, a dict with a 'loss' key, or None (where the "
        f"step will be skipped); got {type(out).__name__}."
    )
