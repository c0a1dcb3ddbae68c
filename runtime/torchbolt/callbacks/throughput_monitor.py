"""ThroughputMonitor: log batches, samples (and items, FLOPs) per second for train, validation, test, predict."""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


class Throughput:
    """Rates over a sliding window of the last `window_size` updates (cumulative time, batches, samples...)."""

    def __init__(self, available_flops: float | None = None, world_size: int = 1, window_size: int = 100,
                 separator: str = "/") -> None:
        if window_size < 2:
            raise ValueError(f"Expected window_size to be >= 2, got {window_size}.")
        self.available_flops = available_flops
        self.world_size = world_size
        self.separator = separator
        self._time: deque[float] = deque(maxlen=window_size)
        self._batches: deque[int] = deque(maxlen=window_size)
        self._samples: deque[int] = deque(maxlen=window_size)
        self._lengths: deque[int] = deque(maxlen=window_size)
        self._flops: deque[float] = deque(maxlen=window_size)

    def update(self, *, time: float, batches: int, samples: int, lengths: int | None = None,
               flops: float | None = None) -> None:
        """Record cumulative counters at elapsed `time` seconds."""
        self._time.append(time)
        self._batches.append(batches)
        self._samples.append(samples)
        if lengths is not None:
            self._lengths.append(lengths)
        if flops is not None:
            self._flops.append(flops * self.world_size)

    def reset(self) -> None:
        for d in (self._time, self._batches, self._samples, self._lengths, self._flops):
            d.clear()

    def compute(self) -> dict[str, float]:
        """Totals, plus per-second rates once the window is full (as Lightning reports them)."""
        sep = self.separator
        out: dict[str, float] = {"time": self._time[-1], "batches": self._batches[-1], "samples": self._samples[-1]}
        if self._lengths:
            out["lengths"] = self._lengths[-1]
        if len(self._time) == self._time.maxlen:
            elapsed = self._time[-1] - self._time[0]
            if elapsed > 0:
                dev_batches = (self._batches[-1] - self._batches[0]) / elapsed
                dev_samples = (self._samples[-1] - self._samples[0]) / elapsed
                out.update({"batches_per_sec": dev_batches * self.world_size,
                            "samples_per_sec": dev_samples * self.world_size,
                            f"device{sep}batches_per_sec": dev_batches,
                            f"device{sep}samples_per_sec": dev_samples})
                if len(self._lengths) == self._lengths.maxlen:
                    dev_items = (self._lengths[-1] - self._lengths[0]) / elapsed
                    out["items_per_sec"] = dev_items * self.world_size
                    out[f"device{sep}items_per_sec"] = dev_items
        if len(self._flops) == self._flops.maxlen:
            elapsed = self._time[-1] - self._time[0]
            if elapsed > 0:
                flops_per_sec = sum(list(self._flops)[1:]) / elapsed
                out["flops_per_sec"] = flops_per_sec
                out[f"device{sep}flops_per_sec"] = flops_per_sec / self.world_size
                if self.available_flops:
                    out[f"device{sep}mfu"] = flops_per_sec / self.world_size / self.available_flops
        return out


class ThroughputMonitor(Callback):
    """Logs throughput: `batch_size_fn(batch)` gives samples per batch, `length_fn(batch)` items (tokens)
    per batch; a module attribute `flops_per_batch` adds FLOPs. Keyword arguments go to `Throughput`
    (`window_size`, `separator`). Metrics are named `<stage><separator><metric>`, e.g. `train/samples_per_sec`.
    """

    def __init__(self, batch_size_fn: Callable[[Any], int], length_fn: Callable[[Any], int] | None = None,
                 **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.batch_size_fn = batch_size_fn
        self.length_fn = length_fn
        self.available_flops: float | None = None
        self._throughputs: dict[str, Throughput] = {}
        self._t0s: dict[str, float] = {}
        self._lengths: dict[str, int] = {}
        self._samples: dict[str, int] = {}
        self._batches: dict[str, int] = {}
        self._module_has_flops: bool | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stages = {"fit": ["train", "validate"], "validate": ["validate"], "test": ["test"], "predict": ["predict"]}
        for name in stages.get(stage, [stage]):
            self._throughputs[name] = Throughput(available_flops=self.available_flops, **self.kwargs)

    def _stage(self, trainer: Trainer) -> str:
        stage = trainer.state.stage
        return "validate" if stage is not None and stage.value == "validate" else str(stage.value if stage else "")

    def _start(self, trainer: Trainer) -> None:
        stage = self._stage(trainer)
        fitting = trainer.state.fn is not None and trainer.state.fn.value == "fit"
        if fitting or stage not in self._samples:
            self._throughputs.setdefault(stage, Throughput(**self.kwargs)).reset()
            self._lengths[stage] = self._samples[stage] = self._batches[stage] = 0
        self._t0s[stage] = time.perf_counter()

    @torch.inference_mode()
    def _update(self, trainer: Trainer, pl_module: LightningModule, batch: Any) -> None:
        stage = self._stage(trainer)
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - self._t0s[stage]
        if self.length_fn is not None:
            self._lengths[stage] += self.length_fn(batch)
        if self._module_has_flops is None:
            self._module_has_flops = hasattr(pl_module, "flops_per_batch")
            if not self._module_has_flops:
                warnings.warn(
                    "When using the `ThroughputMonitor`, you need to define a `flops_per_batch` attribute or property "
                    f"in {type(pl_module).__name__} to compute the FLOPs.",
                    stacklevel=2,
                )
        self._samples[stage] += self.batch_size_fn(batch)
        self._batches[stage] += 1
        self._throughputs[stage].update(
            time=elapsed, batches=self._batches[stage], samples=self._samples[stage],
            lengths=None if self.length_fn is None else self._lengths[stage],
            flops=pl_module.flops_per_batch if self._module_has_flops else None,  # type: ignore[attr-defined]
        )

    def _compute(self, trainer: Trainer, step: int | None = None) -> None:
        if step is None and not trainer._loops.should_log_step():
            return
        stage = self._stage(trainer)
        throughput = self._throughputs[stage]
        metrics = {f"{stage}{throughput.separator}{k}": float(v) for k, v in throughput.compute().items()}
        trainer._loops.log_metrics(metrics, step=step)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._update(trainer, pl_module, batch)
        self._compute(trainer)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self._start(trainer)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if trainer.sanity_checking:
            return
        self._update(trainer, pl_module, batch)
        self._compute(trainer, self._batches[self._stage(trainer)])

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or "train" not in self._t0s or "validate" not in self._t0s:
            return
        # don't count validation time in the training rates
        train_times = self._throughputs["train"]._time
        val_times = self._throughputs["validate"]._time
        train_finished = self._t0s["train"] + (train_times[-1] if train_times else 0.0)
        gap = self._t0s["validate"] - train_finished
        self._t0s["train"] += gap + (val_times[-1] if val_times else 0.0)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._update(trainer, pl_module, batch)
        self._compute(trainer, self._batches[self._stage(trainer)])

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._update(trainer, pl_module, batch)
        self._compute(trainer, self._batches[self._stage(trainer)])
