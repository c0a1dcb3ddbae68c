"""The Trainer's loops, one module per loop, each reading in hook order (reference §2.1-2.4).

- `context.Loops`: what the loops share (dispatcher, metrics, precision, device, `LoopState`, request,
  step plan), batch-to-device, step execution under autocast, and logger output;
- `plan`: the per-run `StepPlan` (which hooks run, which fast path applies), decided before the loop;
- `fit`: epochs and training batches; `optimization`: backward, optimizer step, automatic/manual step;
- `evaluation`: sanity check, validation, test; `predict`: prediction;
- `sources`: where batches come from; `_common`: RNG snapshots, mode memory, signature checks.
"""

from __future__ import annotations

from torchbolt.loops._common import capture_rng, restore_rng
from torchbolt.loops.context import Loops
from torchbolt.loops.plan import StepPlan, build_step_plan

__all__ = ["Loops", "StepPlan", "build_step_plan", "capture_rng", "restore_rng"]
