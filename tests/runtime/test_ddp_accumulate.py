"""Gradient accumulation under DDP and FSDP2 (2 gloo processes on CPU): micro-batches that do not step skip the
gradient synchronization (DDP's all-reduce, FSDP's reduce-scatter), and the result equals reducing on every
micro-batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _hw_helpers import SCRIPTS, TIMEOUT_S, script_env

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_accumulation_skips_gradient_sync_on_micro_batches_with_the_same_result(tmp_path: Path, strategy: str) -> None:
    runs = {name: subprocess.Popen([sys.executable, str(SCRIPTS / "accumulate_script.py"), str(tmp_path / name),
                                    "--strategy", strategy, *flags], cwd=tmp_path, env=script_env(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for name, flags in (("skip", ()), ("synced", ("--sync-every-batch",)))}
    for name, proc in runs.items():
        try:
            _, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        assert proc.returncode == 0, f"{name} failed:\n{err[-4000:]}"
    skip = [json.loads((tmp_path / "skip" / f"rank{r}.json").read_text()) for r in range(2)]
    synced = [json.loads((tmp_path / "synced" / f"rank{r}.json").read_text()) for r in range(2)]
    # 4 micro-batches per rank and epoch, 2 epochs, accumulate 2: 4 optimizer steps, 4 micro-batches that do not step
    for rank in range(2):
        assert skip[rank]["global_step"] == synced[rank]["global_step"] == 4
        assert skip[rank]["entries"] == synced[rank]["entries"] == 4  # the loop entered the context for each
        assert synced[rank]["reductions"] == 8  # one per backward: 8 micro-batches per rank
        assert skip[rank]["reductions"] == 4  # one per optimizer step only
    a = torch.load(tmp_path / "skip" / "weights.pt")
    b = torch.load(tmp_path / "synced" / "weights.pt")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    torch.manual_seed(0)  # the initial weights, as the script builds them
    start = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    assert any((a[f"net.{k}"] - v).abs().max() > 1e-3 for k, v in start.state_dict().items())  # it did train
