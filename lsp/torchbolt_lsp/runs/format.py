"""Pure text formatting of metric series: values, trend arrows, sparklines and the inlay-hint label."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Eight block heights, lowest first.
BARS = "▁▂▃▄▅▆▇█"
#: How many recent points a sparkline shows.
SPARK_WIDTH = 8
# Metric-name fragments for which a higher value is better (everything else: lower is better).
_HIGHER_IS_BETTER = ("acc", "auc", "f1", "precision", "recall", "iou", "map", "score", "dice", "top", "r2")


def format_value(value: float | None) -> str:
    """A metric value in 4 significant digits (`0.2312`, `1.234e-05`, `nan`)."""
    if value is None:
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def metric_mode(name: str, monitor: str | None = None, monitor_mode: str | None = None) -> str:
    """'min' or 'max': the checkpoint callback's mode for the metric it monitors, else a name heuristic."""
    if monitor is not None and name == monitor and monitor_mode in ("min", "max"):
        return monitor_mode
    lowered = name.lower()
    if "loss" in lowered or "err" in lowered:
        return "min"
    return "max" if any(part in lowered for part in _HIGHER_IS_BETTER) else "min"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def sparkline(values: Sequence[float | None], width: int = SPARK_WIDTH) -> str:
    """The last `width` finite values as block characters scaled between their min and max."""
    points = _finite(values)[-width:]
    if not points:
        return ""
    lo, hi = min(points), max(points)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return BARS[3] * len(points)  # flat series: a flat middle line
    top = len(BARS) - 1
    return "".join(BARS[round((v - lo) / (hi - lo) * top)] for v in points)


def trend(values: Sequence[float | None]) -> str:
    """↑, ↓ or → comparing the last finite value with the one before ('' with fewer than two)."""
    points = _finite(values)
    if len(points) < 2:
        return ""
    prev, last = points[-2], points[-1]
    if abs(last - prev) <= 1e-12 * max(1.0, abs(prev)):
        return "→"
    return "↑" if last > prev else "↓"


def best(values: Sequence[float | None], mode: str) -> float | None:
    """The best finite value of the series for mode 'min' or 'max' (None when there is none)."""
    points = _finite(values)
    if not points:
        return None
    return min(points) if mode == "min" else max(points)


def hint_label(name: str, values: Sequence[float | None], mode: str = "min", best_value: float | None = None,
               latest: float | None = None) -> str:
    """`val_loss 0.231 ↓ ▇▅▄▂▁ best 0.219` for a metric's history (latest value defaults to the last point)."""
    if latest is None:
        finite = _finite(values)
        latest = finite[-1] if finite else (values[-1] if values else None)
    parts = [name, format_value(latest)]
    arrow = trend(values)
    if arrow:
        parts.append(arrow)
    spark = sparkline(values)
    if len(spark) >= 2:
        parts.append(spark)
    top = best_value if best_value is not None else best(values, mode)
    if top is not None and len(_finite(values)) >= 2:
        parts.append(f"best {format_value(top)}")
    return " ".join(parts)


def progress_message(epoch: int | None, max_epochs: int | None, batch: int | None, total: int | None,
                     metrics: dict[str, float | None], stage: str = "train", metric_limit: int = 2) -> str:
    """`epoch 3/10 · step 120/400 · loss 0.231` (1-based epoch; unknown totals are left out)."""
    parts: list[str] = []
    if epoch is not None and stage == "train":
        parts.append(f"epoch {epoch + 1}/{max_epochs}" if max_epochs and max_epochs > 0 else f"epoch {epoch + 1}")
    elif stage != "train":
        parts.append({"sanity_check": "sanity check", "validate": "validating", "test": "testing",
                      "predict": "predicting"}.get(stage, stage))
    if batch is not None:
        parts.append(f"step {batch}/{total}" if total else f"step {batch}")
    for name, value in list(metrics.items())[:metric_limit]:
        parts.append(f"{name} {format_value(value)}")
    return " · ".join(parts)


def progress_percentage(epoch: int | None, max_epochs: int | None, batch: int | None, total: int | None,
                        global_step: int | None = None, max_steps: int | None = None) -> int | None:
    """Percent done of the whole run (max_steps wins when set), clamped to 0..100; None when unknown."""
    if max_steps and max_steps > 0 and global_step is not None:
        fraction = global_step / max_steps
    elif max_epochs and max_epochs > 0 and epoch is not None:
        within = (batch or 0) / total if total else 0.0
        fraction = (epoch + min(within, 1.0)) / max_epochs
    else:
        return None
    return max(0, min(100, int(fraction * 100)))


def hardware_label(accelerator: str | None, devices: int | None = None, device_ids: Sequence[int] | None = None,
                   strategy: str | None = None, precision: str | None = None, num_nodes: int | None = None,
                   world_size: int | None = None) -> str | None:
    """`cpu ×2 · ddp · 32-true`, `cuda:1 · bf16-mixed`, `cuda ×8 (0,1,...) · 2 nodes · 16 processes · fsdp · 16-mixed`.

    The single-device strategy is implied by one device and left out; None when the accelerator is unknown.
    """
    if not accelerator:
        return None
    ids = list(device_ids or [])
    count = devices if devices is not None else (len(ids) or None)
    if accelerator == "cpu" or not ids:
        place = f"{accelerator} ×{count}" if count and count > 1 else accelerator
    elif len(ids) == 1:
        place = f"{accelerator}:{ids[0]}"
    else:
        place = f"{accelerator} ×{len(ids)} ({','.join(str(i) for i in ids)})"
    parts = [place]
    if num_nodes and num_nodes > 1:
        parts.append(f"{num_nodes} nodes")
        if world_size:
            parts.append(f"{world_size} processes")
    if strategy and strategy != "single_device":
        parts.append(strategy)
    if precision:
        parts.append(precision)
    return " · ".join(parts)
