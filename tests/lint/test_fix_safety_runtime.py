"""The fixes keep what code does at run time: a 1.x module and Trainer call, fixed by `torchbolt check
--fix --unsafe-fixes`, trains on torchbolt to exactly the result of the same module migrated by hand.

The legacy module hands its epoch outputs on after the hook (the case the old migration broke by
clearing the list first) and builds its Trainer with `gpus=None` and `checkpoint_callback=False` (the
CPU, no checkpoints). Training runs in a subprocess: the test process never imports torch.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from torchbolt_lsp.lint.cli import main

LEGACY = '''
import torch
import torchbolt as pl
from torch.utils.data import DataLoader, TensorDataset


class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 2)
        self.history = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {"correct": (self.layer(x).argmax(1) == y).sum(), "count": len(y)}

    def validation_epoch_end(self, outputs):
        self.history.append(outputs)
        return self.summarise(outputs)

    def summarise(self, outputs):
        self.log("val_acc", sum(float(o["correct"]) for o in outputs) / sum(o["count"] for o in outputs))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def make_trainer():
    return pl.Trainer(gpus=None, checkpoint_callback=False, max_epochs=2, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0)


def loader():
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)),
                      batch_size=4)
'''

BY_HAND = (LEGACY.replace("        self.history = []\n", "        self.history = []\n        self.outs = []\n")
           .replace('        return {"correct": (self.layer(x).argmax(1) == y).sum(), "count": len(y)}\n',
                    '        out = {"correct": (self.layer(x).argmax(1) == y).sum(), "count": len(y)}\n'
                    "        self.outs.append(out)\n        return out\n")
           .replace("    def validation_epoch_end(self, outputs):\n",
                    "    def on_validation_epoch_end(self):\n        outputs, self.outs = self.outs, []\n")
           .replace("gpus=None, checkpoint_callback=False", 'accelerator="cpu", enable_checkpointing=False'))

RUNNER = '''
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("mod", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
model = mod.Net()
trainer = mod.make_trainer()
trainer.fit(model, mod.loader(), mod.loader())
print(json.dumps({"val_acc": float(trainer.callback_metrics["val_acc"]), "steps": trainer.global_step,
                  "history": [len(h) for h in model.history],
                  "weights": [round(float(v), 6) for v in model.layer.weight.flatten()],
                  "device": str(trainer._device), "no_checkpoints": trainer.checkpoint_callback is None}))
'''


def _train(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_fixed_legacy_module_trains_like_the_hand_migrated_one(tmp_path: Path):
    legacy = tmp_path / "legacy.py"
    legacy.write_text(textwrap.dedent(LEGACY).lstrip("\n"))
    by_hand = tmp_path / "by_hand.py"
    by_hand.write_text(textwrap.dedent(BY_HAND).lstrip("\n"))
    out = io.StringIO()
    assert main(["--fix", "--unsafe-fixes", str(legacy)], stdout=out, stderr=io.StringIO()) == 0, out.getvalue()
    fixed = legacy.read_text()
    assert 'accelerator="cpu", enable_checkpointing=False' in fixed and "def on_validation_epoch_end(self):" in fixed
    result, expected = _train(legacy), _train(by_hand)
    assert result == expected
    assert result["device"] == "cpu" and result["no_checkpoints"]
    assert result["steps"] == 8 and result["history"] == [4, 4]  # each epoch's outputs kept, none emptied
