"""Differential check of the structural fixes against real Lightning 2.6.6: a 1.x module that Lightning
refuses trains after `torchbolt check --fix`, with the migrated epoch-end hooks really called.

Runs Lightning in a subprocess (the test process never imports torch or lightning).
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torchbolt_lsp.lint.cli import main

pytestmark = [
    pytest.mark.lightning,
    # find_spec, not importorskip: importing lightning here would load torch into the test process
    pytest.mark.skipif(importlib.util.find_spec("lightning") is None,
                       reason="differential tests need lightning==2.6.6"),
]

LEGACY = '''
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class Legacy(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        loss.backward()  # 1.x habit: the Trainer does this
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {"correct": (self.layer(x).argmax(1) == y).sum(), "count": len(y)}

    def validation_epoch_end(self, outputs):
        self.log("val_acc", sum(int(o["correct"]) for o in outputs) / sum(o["count"] for o in outputs))

    def on_epoch_start(self):
        pass

    def configure_optimiser(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader():
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)),
                      batch_size=4)
'''

RUNNER = '''
import importlib.util, json, sys
import lightning.pytorch as pl
spec = importlib.util.spec_from_file_location("mod", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
try:
    trainer.fit(mod.Legacy(), mod.loader(), mod.loader())
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
else:
    print(json.dumps({"metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
                      "steps": trainer.global_step}))
'''


def _run(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fixed_legacy_module_trains_in_lightning(tmp_path: Path):
    path = tmp_path / "legacy.py"
    path.write_text(textwrap.dedent(LEGACY).lstrip("\n"))
    before = _run(path)
    # Lightning refuses it (first complaint: the misspelled configure_optimizers)
    assert before.get("error", "").startswith(("MisconfigurationException", "NotImplementedError")), before
    out = io.StringIO()
    # the hook rename and the epoch-end migration are unsafe fixes (they change what Lightning calls)
    assert main(["--fix", "--unsafe-fixes", str(path)], stdout=out) == 1  # on_epoch_start (TB105): no fix
    assert "TB105" in out.getvalue() and "on_epoch_start" in out.getvalue()
    fixed = path.read_text()
    assert "def on_validation_epoch_end(self):" in fixed and "def configure_optimizers(self):" in fixed
    assert "loss.backward()" not in fixed
    after = _run(path)
    assert "error" not in after, after
    assert after["steps"] == 4  # 16 samples / batch 4, one epoch: the optimizer really stepped
    assert 0.0 <= after["metrics"]["val_acc"] <= 1.0  # the migrated epoch-end hook ran and logged
