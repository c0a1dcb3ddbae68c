"""Per-step work of each bench/overhead.py variant, counted rather than timed: Python bytecode instructions,
Python function calls, calls into C, and torch operator dispatches per training step.

Timings on a shared machine drift by more than the margins of the overhead targets; these counts do not
move between runs (same code, same inputs, same counts), so they show what a change to the loop saves.
Each count is (count of a 300-step fit - count of a 100-step fit) / 200 (by default), which removes everything that runs
once per fit (Trainer construction, setup, teardown). Instructions are counted with `sys.settrace` opcode
events, calls with `sys.setprofile`, torch operators with a TorchDispatchMode.

    python bench/step_instructions.py [--no-lightning] [--short 100] [--long 300]
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).parent))
import overhead  # noqa: E402  (the same variants, model and data as the timed benchmark)


def _instructions(run: Callable[[], Any]) -> dict[str, int]:
    counts = {"instructions": 0, "python calls": 0, "C calls": 0}

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            counts["instructions"] += 1
        elif event == "call":
            frame.f_trace_opcodes = True
        return tracer

    def profiler(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            counts["python calls"] += 1
        elif event == "c_call":
            counts["C calls"] += 1

    sys.settrace(tracer)
    sys.setprofile(profiler)
    try:
        run()
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    return counts


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def _torch_ops(run: Callable[[], Any]) -> int:
    mode = _CountOps()
    with mode:
        run()
    return mode.count


def per_step(variant: Callable[[Any], Any], short_steps: int = 100, long_steps: int = 300) -> dict[str, float]:
    """The variant's counts per training step (see the module docstring)."""
    short, long_ = overhead.make_data(short_steps), overhead.make_data(long_steps)
    steps = long_steps - short_steps
    variant(short)  # first run: lazy imports and caches
    out: dict[str, float] = {}
    a, b = _instructions(lambda: variant(short)), _instructions(lambda: variant(long_))
    for key in a:
        out[key] = (b[key] - a[key]) / steps
    out["torch ops"] = (_torch_ops(lambda: variant(long_)) - _torch_ops(lambda: variant(short))) / steps
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-lightning", action="store_true", help="skip Lightning's rows")
    parser.add_argument("--short", type=int, default=100, help="steps of the short fit")
    parser.add_argument("--long", type=int, default=300, help="steps of the long fit")
    args = parser.parse_args(argv)
    if not 0 < args.short < args.long:
        parser.error("need 0 < --short < --long")
    torch.set_num_threads(1)
    rows = collections.OrderedDict()
    for name, variant in overhead.variants(include_lightning=not args.no_lightning).items():
        rows[name] = per_step(variant, args.short, args.long)
        print(f"  {name}: done", file=sys.stderr)
    base = rows["hand-written loop"]["instructions"]
    print("| variant | bytecode instructions / step | vs hand-written | Python calls / step | C calls / step | "
          "torch ops / step |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['instructions']:.0f} | {row['instructions'] / base:.3f}× | "
              f"{row['python calls']:.0f} | {row['C calls']:.0f} | {row['torch ops']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
