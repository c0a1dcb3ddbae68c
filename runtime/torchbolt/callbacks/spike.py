"""SpikeDetection: stop training when the loss jumps far above its running mean, and record the batches."""

from __future__ import annotations

import json
import os
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch

from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


class TrainingSpikeException(RuntimeError):
    """Raised by SpikeDetection when the loss spiked in a training batch."""

    def __init__(self, batch_idx: int, *args: Any, **kwargs: Any) -> None:
        super().__init__(f"Training spike detected in batch {batch_idx}", *args, **kwargs)


class SpikeDetection(Callback):
    """Raises `TrainingSpikeException` when a training loss is worse than the running mean of the last
    `window` losses by more than `atol` and `rtol * mean` (both when both are set), after `warmup` batches.

    The two batches around a spike are appended to a JSON list at `exclude_batches_path` (default
    `<default_root_dir>/skip_batches.json`) so a rerun can skip them. With `finite_only`, a NaN/inf loss
    counts as a spike.
    """

    def __init__(self, mode: Literal["min", "max"] = "min", window: int = 10, warmup: int = 1,
                 atol: float | None = None, rtol: float | None = 2.0,
                 exclude_batches_path: str | os.PathLike[str] | None = None, finite_only: bool = True) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"Invalid mode. Has to be min or max, found {mode}")
        if window < 1:
            raise ValueError(f"SpikeDetection(window={window}) must be >= 1.")
        self.last_val: torch.Tensor | float = 0.0
        self.window = window
        self._values: deque[torch.Tensor] = deque(maxlen=window)
        self.mode = mode
        self.warmup = warmup
        self.atol = atol
        self.rtol = rtol
        self.bad_batches: list[int] = []
        self.exclude_batches_path: str | os.PathLike[str] | None = exclude_batches_path
        self.finite_only = finite_only

    @torch.no_grad()
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if isinstance(outputs, torch.Tensor):
            loss = outputs.detach()
        elif isinstance(outputs, Mapping):
            loss = outputs["loss"].detach()
        else:
            raise TypeError(f"outputs have to be of type torch.Tensor or Mapping, got {type(outputs).__qualname__}")
        if self.exclude_batches_path is None:
            self.exclude_batches_path = os.path.join(trainer.default_root_dir, "skip_batches.json")
        if not str(self.exclude_batches_path).endswith(".json"):
            self.exclude_batches_path = os.path.join(self.exclude_batches_path, "skip_batches.json")
        if batch_idx >= self.warmup and self._is_spike(loss):
            self._handle_spike(batch_idx)
        if self.finite_only or bool(torch.isfinite(loss).all()):
            self._values.append(loss.float().mean())
            self.last_val = loss

    def _running_mean(self) -> torch.Tensor:
        if not self._values:
            return torch.tensor(float("nan"))
        return torch.stack(list(self._values)).mean()

    def _is_spike(self, loss: torch.Tensor) -> bool:
        if self.finite_only and not bool(torch.isfinite(loss).all()):
            return True
        diff = loss - self.last_val
        better = bool((diff <= 0).all()) if self.mode == "min" else bool((diff >= 0).all())
        if better:
            return False
        mean = self._running_mean()
        atol_ok = self.atol is None or bool(abs(loss - mean) >= abs(self.atol))
        rtol_ok = self.rtol is None or bool(abs(loss - mean) >= abs(self.rtol * mean))
        return atol_ok and rtol_ok

    def _handle_spike(self, batch_idx: int) -> None:
        self.bad_batches.extend([batch_idx - 1, batch_idx])
        path = os.fspath(self.exclude_batches_path or "skip_batches.json")
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.bad_batches, f, indent=4)
        raise TrainingSpikeException(batch_idx=batch_idx)

    def state_dict(self) -> dict[str, Any]:
        """Lightning's layout: the settings, the last loss and the recorded batches. The running window
        is not saved (Lightning keeps it in non-persistent metric states, so its `running` and `mean`
        entries are always empty); after a restore the window fills again from the next batches."""
        last = self.last_val.item() if isinstance(self.last_val, torch.Tensor) else self.last_val
        return {"last_val": last, "mode": self.mode, "warmup": self.warmup, "atol": self.atol, "rtol": self.rtol,
                "bad_batches": list(self.bad_batches),
                "bad_batches_path": None if self.exclude_batches_path is None else os.fspath(self.exclude_batches_path),
                "running": OrderedDict(), "mean": OrderedDict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state written by `state_dict`, by Lightning's SpikeDetection, or by an earlier torchbolt
        (whose `window_values` refill the window)."""
        missing = [key for key in ("last_val", "mode", "warmup", "atol", "rtol", "bad_batches", "bad_batches_path")
                   if key not in state_dict]
        if missing:
            raise KeyError(f"SpikeDetection state is missing {missing}; it was not written by SpikeDetection.state_dict.")
        self.last_val = state_dict["last_val"]
        self.mode = state_dict["mode"]
        self.warmup = state_dict["warmup"]
        self.atol = state_dict["atol"]
        self.rtol = state_dict["rtol"]
        self.bad_batches = list(state_dict["bad_batches"])
        self.exclude_batches_path = state_dict["bad_batches_path"]
        self._values = deque((torch.tensor(v) for v in state_dict.get("window_values", [])), maxlen=self.window)
