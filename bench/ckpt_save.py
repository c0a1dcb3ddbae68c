"""What atomic, fsync'ed checkpoint writes and the safe loader cost, against plain torch.save / torch.load.

Prints a table of medians over several runs, side by side in one process, and the ratios:

    .venv/bin/python bench/ckpt_save.py [--sizes-mb 1 16 64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchbolt.checkpoint.io import atomic_save, safe_load


def _payload(size_mb: float) -> dict[str, object]:
    numel = int(size_mb * 1024 * 1024 / 4)
    return {
        "state_dict": {"w": torch.randn(numel)},
        "hyper_parameters": {"lr": 0.1, "name": "bench"},
        "epoch": 1,
        "global_step": 10,
    }


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measure(size_mb: float, root: Path, repeats: int) -> tuple[float, float, float, float]:
    """Median seconds of (torch.save, atomic_save, torch.load, safe_load) for one payload size."""
    payload = _payload(size_mb)
    plain, atomic = root / "plain.ckpt", root / "atomic.ckpt"
    return (
        _median_seconds(lambda: torch.save(payload, plain), repeats),
        _median_seconds(lambda: atomic_save(payload, atomic), repeats),
        _median_seconds(lambda: torch.load(plain, weights_only=False), repeats),
        _median_seconds(lambda: safe_load(atomic), repeats),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[1.0, 16.0, 64.0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes_mb:
            rows.append((size, *_measure(size, Path(folder), args.repeats)))
    header = f"{'MB':>6} {'torch.save':>11} {'atomic_save':>12} {'ratio':>6} {'torch.load':>11} {'safe_load':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for size, ps, as_, pl, sl in rows:
        print(f"{size:6.0f} {ps * 1e3:9.1f}ms {as_ * 1e3:10.1f}ms {as_ / ps:6.2f} {pl * 1e3:9.1f}ms "
              f"{sl * 1e3:8.1f}ms {sl / pl:6.2f}")
    print(f"(medians of {args.repeats} runs; atomic_save adds fsync of file and folder plus a rename; "
          "safe_load is torch.load(weights_only=True) with torchbolt's allow-list)")


if __name__ == "__main__":
    main()
