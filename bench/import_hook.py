"""Import time the Lightning import hook adds (target: at most 0.05 s), in fresh interpreters.

Each run starts a new interpreter that imports torch first (outside the timing, the same for both), then
times the imports a Lightning script makes: once through the hook (`lightning.pytorch`, its callbacks,
loggers and utilities, after `torchbolt.compat.install()`), once straight from torchbolt (the same modules
by their torchbolt names). Runs alternate; the added time is the median of the per-pair differences.
With `--lightning`, the real Lightning's import of the same names is timed too, for scale.

    python bench/import_hook.py [--runs 15] [--lightning]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_TIMED = """
import time, torch
t0 = time.perf_counter()
{setup}
{imports}
print(time.perf_counter() - t0)
"""

LIGHTNING_IMPORTS = """
import lightning as L
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint, EarlyStopping, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.types import STEP_OUTPUT
L.LightningModule, L.Trainer
"""

TORCHBOLT_IMPORTS = """
import torchbolt as pl
from torchbolt.callbacks import ModelCheckpoint, EarlyStopping, LearningRateMonitor
from torchbolt.loggers import CSVLogger, TensorBoardLogger
from torchbolt.utilities import rank_zero_only
from torchbolt.utilities.types import STEP_OUTPUT
pl.LightningModule, pl.Trainer
"""

VARIANTS = {
    "torchbolt names, no hook": ("", TORCHBOLT_IMPORTS),
    "Lightning names through the hook": ("import torchbolt.compat; torchbolt.compat.install()", LIGHTNING_IMPORTS),
    "real Lightning (for scale)": ("", LIGHTNING_IMPORTS),
}


def measure(name: str) -> float:
    setup, imports = VARIANTS[name]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "runtime"), os.environ.get("PYTHONPATH", "")])}
    code = _TIMED.format(setup=setup, imports=imports)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--lightning", action="store_true", help="also time the real Lightning's imports")
    args = parser.parse_args()
    names = list(VARIANTS)[: 3 if args.lightning else 2]
    times: dict[str, list[float]] = {n: [] for n in names}
    measure(names[0])  # warm the file cache
    for _ in range(args.runs):
        for name in names:
            times[name].append(measure(name))
    direct, hooked = times[names[0]], times[names[1]]
    added = statistics.median(h - d for h, d in zip(hooked, direct, strict=True))
    print(f"| imports (fresh interpreter, torch already imported; median of {args.runs}) | seconds |")
    print("|---|---:|")
    for name in names:
        print(f"| {name} | {statistics.median(times[name]):.4f} |")
    print(f"| **added by the hook** (median of paired differences; target <= 0.05) | **{added:.4f}** |")
    return 0 if added <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
