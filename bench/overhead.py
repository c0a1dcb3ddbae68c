"""Per-step overhead of torchbolt (and Lightning, when installed) against a hand-written PyTorch loop.

Model: MLP 32→64→10, batch 32, 1,000 steps, SGD, CPU, one thread, `self.log` of the loss every step.
Every variant trains on the same DataLoader with the same initial weights; runs are interleaved
(one of each variant per round) after a dropped warm-up round, and each time is the median of the
rounds. Also measures import time in fresh interpreters. Prints a table; `--write-readme` also writes
it into bench/README.md under "## Runtime overhead".

    python bench/overhead.py [--runs 9] [--steps 1000] [--no-lightning] [--no-imports] [--write-readme]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

BATCH = 32


def clock() -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds). Both are recorded: on a busy shared machine the CPU
    time is disturbed far less than the wall clock (training runs on one thread, so CPU time ≈ work)."""
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]
README = Path(__file__).with_name("README.md")
HEADING = "## Runtime overhead"


def make_data(steps: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * BATCH, 32, generator=g)
    y = torch.randint(0, 10, (steps * BATCH,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False)


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def hand_written(loader: DataLoader) -> tuple[float, float]:
    """The baseline: what a user writes without a framework."""
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    start = clock()
    for x, y in loader:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return since(start)


def module_class(base: type) -> type:
    """The same training step as the hand-written loop, as a LightningModule of `base`."""

    class Tiny(base):  # type: ignore[misc,valid-type]
        def __init__(self, loader: DataLoader) -> None:
            super().__init__()
            self.net = make_net()
            self.loader = loader

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def train_dataloader(self) -> DataLoader:
            return self.loader

    return Tiny


BARE = {"logger": False, "enable_progress_bar": False, "enable_checkpointing": False,
        "enable_model_summary": False}


def framework_run(trainer_cls: type, module_cls: type, loader: DataLoader, bare: bool,
                  profiler: Callable[[], Any] | None = None) -> tuple[float, float]:
    """Times Trainer construction plus fit (the whole user-visible cost) for one epoch; `profiler` makes
    the profiler passed as Trainer(profiler=...) (its report, printed at the end, is part of the cost)."""
    with tempfile.TemporaryDirectory() as root:
        model = module_cls(loader)
        kwargs: dict[str, Any] = dict(BARE) if bare else {}
        if profiler is not None:
            kwargs["profiler"] = profiler()
        # Progress output goes to a buffer (not a terminal), as in CI logs; the bar still renders.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = clock()
            trainer = trainer_cls(max_epochs=1, default_root_dir=root, **kwargs)
            trainer.fit(model)
            elapsed = since(start)
    return elapsed


Timer = Callable[[DataLoader], tuple[float, float]]


def variants(include_lightning: bool, include_torchbolt: bool = True) -> dict[str, Timer]:
    out: dict[str, Timer] = {"hand-written loop": hand_written}
    if include_torchbolt:
        import torchbolt

        tb_module = module_class(torchbolt.LightningModule)
        out["torchbolt bare"] = lambda dl: framework_run(torchbolt.Trainer, tb_module, dl, bare=True)
        out["torchbolt Trainer()"] = lambda dl: framework_run(torchbolt.Trainer, tb_module, dl, bare=False)
        from torchbolt.profilers import SimpleProfiler as TbSimple

        out["torchbolt bare + SimpleProfiler"] = lambda dl: framework_run(torchbolt.Trainer, tb_module, dl, True,
                                                                          TbSimple)
    if include_lightning:
        try:
            import lightning.pytorch as pl
        except ImportError:
            print("lightning is not installed: skipping its rows", file=sys.stderr)
        else:
            for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
                logging.getLogger(name).setLevel(logging.ERROR)
            pl_module = module_class(pl.LightningModule)
            out["lightning bare"] = lambda dl: framework_run(pl.Trainer, pl_module, dl, bare=True)
            out["lightning Trainer()"] = lambda dl: framework_run(pl.Trainer, pl_module, dl, bare=False)
            out["lightning bare + SimpleProfiler"] = lambda dl: framework_run(
                pl.Trainer, pl_module, dl, True, pl.profilers.SimpleProfiler)
    return out


def measure_steps(runs: int, steps: int, include_lightning: bool, include_torchbolt: bool = True
                  ) -> dict[str, list[tuple[float, float]]]:
    loader = make_data(steps)
    fns = variants(include_lightning, include_torchbolt)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    order = list(fns)
    shuffle = random.Random(0).shuffle
    for round_ in range(runs + 1):
        # A new order every round (seeded): a variant's place in the round carries no systematic share of
        # the machine's drift, and each round's times stay paired for the per-round ratios.
        shuffle(order)
        for name in order:
            elapsed = fns[name](loader)
            if round_ > 0:  # round 0 warms up caches, allocator and lazy imports
                times[name].append(elapsed)
        if round_:
            print(f"  round {round_}/{runs}: " + ", ".join(f"{n} {times[n][-1][0]:.3f}s" for n in fns),
                  file=sys.stderr)
    return times


#: What each import row runs after `import torch` in a fresh interpreter (empty: torch alone).
IMPORTS = {
    "import torch": "",
    "import torch; import torchbolt": "import torchbolt",
    "import torch; from torchbolt import Trainer, LightningModule": "from torchbolt import Trainer, LightningModule",
    "import torch; import lightning.pytorch": "import lightning.pytorch",
}


def time_import(statement: str) -> tuple[float, float]:
    """(seconds for `import torch`, seconds for `statement` after it), in one fresh interpreter."""
    code = ("import time\n_t0 = time.perf_counter()\nimport torch\n_t1 = time.perf_counter()\n"
            + statement.replace("; ", "\n") + "\n_t2 = time.perf_counter()\nprint(_t1 - _t0, _t2 - _t1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    first, second = out.stdout.strip().splitlines()[-1].split()
    return float(first), float(second)


def measure_imports(runs: int, include_lightning: bool) -> dict[str, list[tuple[float, float]]]:
    names = [n for n in IMPORTS if include_lightning or "lightning" not in n]
    if include_lightning:
        try:
            time_import("import lightning.pytorch")
        except subprocess.CalledProcessError:
            names = [n for n in names if "lightning" not in n]
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for round_ in range(runs + 1):
        for name in names:
            elapsed = time_import(IMPORTS[name])
            if round_ > 0:  # the first round fills the page cache and writes .pyc files
                times[name].append(elapsed)
    return times


def table(step_times: dict[str, list[tuple[float, float]]], import_times: dict[str, list[tuple[float, float]]],
          runs: int, steps: int, load: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> str:
    wall = {n: statistics.median(w for w, _ in v) for n, v in step_times.items()}
    cpu = {n: statistics.median(c for _, c in v) for n, v in step_times.items()}
    base = "hand-written loop"
    # the ratio within each round (same minute of machine time as its baseline), then the median of those
    paired = {n: statistics.median(c / b for (_, c), (_, b) in zip(v, step_times[base], strict=True))
              for n, v in step_times.items()}
    # the fastest run of each: what is left when the machine's interference (which only adds time) is least
    best = {n: min(c for _, c in v) for n, v in step_times.items()}
    lines = [
        f"Tiny MLP 32→64→10, batch 32, {steps} steps, SGD, CPU, torch.set_num_threads(1), `self.log` of the "
        f"loss every step; each time covers Trainer construction + fit; variants interleaved, median of {runs} "
        "runs after a warm-up round, in a new (seeded) order every round. Wall clock and this process's CPU "
        "time are recorded for the same runs; the paired ratio is the median over rounds of each round's CPU "
        "time divided by that round's hand-written loop; the min ratio compares each variant's fastest run.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}."
        + ("" if load is None else
           f" Load average (1/5/15 min) at start {'/'.join(f'{x:.2f}' for x in load[0])}, at end "
           f"{'/'.join(f'{x:.2f}' for x in load[1])}: other work on the machine inflates the wall times most."),
        "",
        "| variant | wall median (s) | ratio (wall) | CPU median (s) | ratio (CPU) | paired ratio (CPU) | "
        "min ratio (CPU) | CPU per step (µs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in step_times:
        lines.append(f"| {name} | {wall[name]:.3f} | {wall[name] / wall[base]:.2f}× | {cpu[name]:.3f} | "
                     f"{cpu[name] / cpu[base]:.2f}× | {paired[name]:.2f}× | {best[name] / best[base]:.2f}× | "
                     f"{cpu[name] / steps * 1e6:.0f} |")
    targets = [("torchbolt bare", 1.10), ("torchbolt Trainer()", 1.25), ("torchbolt bare + SimpleProfiler", 1.30)]
    verdicts = [f"{n} {cpu[n] / cpu[base]:.2f}× (CPU) / {wall[n] / wall[base]:.2f}× (wall) / {paired[n]:.2f}× "
                f"(paired) / {best[n] / best[base]:.2f}× (min) vs ≤ {limit:.2f}×" for n, limit in targets if n in cpu]
    if verdicts:
        lines += ["", "Targets (issues 2 and 12): " + "; ".join(verdicts) + "."]
    if not import_times:
        return "\n".join(lines)
    lines += ["", f"Import time, a fresh interpreter per run (median of {len(next(iter(import_times.values())))} "
              "runs, interleaved, after a warm-up round). The added time is measured in the same interpreter, "
              "after `import torch` finished:", "",
              "| statement | total (s) | added over `import torch` (s) |", "|---|---|---|"]
    for name, pairs in import_times.items():
        total = statistics.median(a + b for a, b in pairs)
        added = "—" if not IMPORTS[name] else f"{statistics.median(b for _, b in pairs):+.3f}"
        lines.append(f"| `{name}` | {total:.3f} | {added} |")
    lines += ["", "Target (issue 2): `import torchbolt` adds at most 0.15 s over `import torch`."]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    """Replaces (or appends) this script's section of bench/README.md, leaving other sections alone."""
    body = f"{HEADING}\n\nMeasured by `python bench/overhead.py --write-readme`.\n\n{text}\n"
    old = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    start = old.find(HEADING)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + body
    else:
        nxt = old.find("\n## ", start + len(HEADING))
        new = old[:start] + body + ("\n" + old[nxt + 1:] if nxt >= 0 else "")
    README.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="measured rounds (after one warm-up)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--import-runs", type=int, default=5)
    parser.add_argument("--no-lightning", action="store_true", help="skip the Lightning rows")
    parser.add_argument("--no-torchbolt", action="store_true", help="skip the torchbolt rows (baselines only)")
    parser.add_argument("--no-imports", action="store_true", help="skip the import-time table")
    parser.add_argument("--write-readme", action="store_true", help=f"write the table into {README}")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.steps < 1:
        parser.error("--runs and --steps must be >= 1")
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    step_times = measure_steps(args.runs, args.steps, not args.no_lightning, not args.no_torchbolt)
    import_times = {} if args.no_imports else measure_imports(args.import_runs, not args.no_lightning)
    text = table(step_times, import_times, args.runs, args.steps, (load_start, os.getloadavg()))
    print(text)
    if args.write_readme:
        write_readme(text)
        print(f"\nwrote {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
