"""`torchbolt lr-find`: fit's parser plus --lr_find.* options, running Tuner.lr_find (the editor's Find LR)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MODEL = '''\
import torch
import torchbolt as tb
from torch.utils.data import DataLoader, TensorDataset


class Tiny(tb.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
        return DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8)
'''


def _torchbolt(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TORCHBOLT_")}
    full_env.update({"PYTHONWARNINGS": "ignore", **(env or {})})
    return subprocess.run([sys.executable, "-m", "torchbolt", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, env=full_env)


def test_lr_find_is_listed_and_its_help_has_the_tuner_options(tmp_path: Path) -> None:
    top = _torchbolt("--help", cwd=tmp_path)
    assert "  lr-find    find a learning rate (Tuner.lr_find)" in top.stdout
    (tmp_path / "tiny.py").write_text(MODEL)
    out = _torchbolt("lr-find", "tiny.py", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert text.startswith("usage: torchbolt lr-find TARGET [--data TARGET]")
    for name in ("min_lr", "max_lr", "num_training", "mode", "early_stop_threshold"):
        assert f"--lr_find.{name}" in text
    assert "--trainer.max_epochs" in text  # fit's options


def test_lr_find_runs_the_tuner_prints_and_writes_the_suggestion(tmp_path: Path) -> None:
    (tmp_path / "tiny.py").write_text(MODEL)
    summary = tmp_path / "out" / "lr.json"
    bad = _torchbolt("lr-find", "tiny.py", "--lr_find.mode", "sideways", cwd=tmp_path)
    assert bad.returncode == 2 and "--lr_find.mode: 'sideways' is not a mode (use exponential or linear)" \
        in bad.stderr, bad.stderr
    typo = _torchbolt("lr-find", "tiny.py", "--lr_find.num_trainin", "5", cwd=tmp_path)
    assert typo.returncode == 2 and "--lr_find.num_trainin: Tuner.lr_find has no option 'num_trainin'; did you " \
        "mean --lr_find.num_training?" in typo.stderr, typo.stderr
    out = _torchbolt("lr-find", "tiny.py::Tiny", "--lr_find.num_training", "25", "--trainer.max_epochs", "5",
                     "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
                     cwd=tmp_path, env={"TORCHBOLT_LR_FIND_SUMMARY": str(summary)})
    assert out.returncode == 0, out.stderr
    data = json.loads(summary.read_text())
    assert len(data["lr"]) == 25 and data["mode"] == "exponential"
    assert data["suggested_lr"] is not None
    assert f"Suggested learning rate: {data['suggested_lr']} (25 points)" in out.stdout
    assert "Finished fit" not in out.stdout  # it tunes, it does not train
