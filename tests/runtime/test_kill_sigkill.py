"""SIGKILL at random moments: a child process fits with a checkpoint every step (multi-MB files, so kills
land mid-write) and is killed again and again, each time resuming from "last". Every `.ckpt` left behind
must load, and a final run resuming from "last" must complete."""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from torchbolt.checkpoint.io import TMP_SUFFIX, safe_load

KILLS = 20
MAX_STEPS = 400

CHILD = textwrap.dedent(
    """
    import os, sys
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    import torchbolt
    from torchbolt.callbacks import ModelCheckpoint

    torch.set_num_threads(1)
    root, max_steps = sys.argv[1], int(sys.argv[2])

    class Big(torchbolt.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(512, 512)  # ~1 MB of weights + ~1 MB of momentum per checkpoint

        def training_step(self, batch, batch_idx):
            (x,) = batch
            return self.layer(x).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3, momentum=0.9)

    class Ready(torchbolt.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if not getattr(self, "said", False):
                self.said = True
                print("READY", trainer.global_step, flush=True)

    data = DataLoader(TensorDataset(torch.randn(64, 512, generator=torch.Generator().manual_seed(0))),
                      batch_size=8, shuffle=True)
    ckpt = ModelCheckpoint(dirpath=os.path.join(root, "ckpts"), every_n_train_steps=1, save_last=True,
                           filename="{step}")
    last = os.path.join(root, "ckpts", "last.ckpt")
    trainer = torchbolt.Trainer(default_root_dir=root, max_steps=max_steps, max_epochs=-1, logger=False,
                                enable_progress_bar=False, enable_model_summary=False, callbacks=[ckpt, Ready()],
                                num_sanity_val_steps=0)
    trainer.fit(Big(), data, ckpt_path="last" if os.path.exists(last) else None)
    print("DONE", trainer.global_step, flush=True)
    """
)


def _start(script: pathlib.Path, root: pathlib.Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(script), str(root), str(MAX_STEPS)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigkill_never_leaves_a_broken_checkpoint(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(20260427)
    ckpt_dir = tmp_path / "ckpts"
    last_steps: list[int] = []
    kills = 0
    attempts = 0
    while kills < KILLS:
        attempts += 1
        assert attempts < KILLS * 2, "the child kept finishing before it could be killed"
        proc = _start(script, tmp_path)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the first step has run (or the child exits)
        if not line.startswith("READY"):
            proc.wait(timeout=60)
            pytest.fail(f"child did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if proc.returncode != -signal.SIGKILL:
            continue  # finished before the kill arrived; try again
        kills += 1
        # every complete-named file loads; partial writes only ever exist under temporary names
        for path in sorted(ckpt_dir.glob("*.ckpt")):
            checkpoint = safe_load(path)
            assert set(checkpoint) >= {"state_dict", "optimizer_states", "loops", "global_step"}, path
        last_steps.append(safe_load(ckpt_dir / "last.ckpt")["global_step"])
    # progress only moves forward across kills: each run resumed from the previous run's last checkpoint
    assert last_steps == sorted(last_steps)
    assert last_steps[-1] > last_steps[0]

    final = _start(script, tmp_path)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err[-3000:]
    assert f"DONE {MAX_STEPS}" in out
    assert safe_load(ckpt_dir / "last.ckpt")["global_step"] == MAX_STEPS
    # the final run cleaned up the temporary files of killed writers
    assert not [p for p in os.listdir(ckpt_dir) if p.endswith(TMP_SUFFIX)]
    # with save_top_k=1 and no monitor only the newest step file and last.ckpt remain
    assert sorted(os.listdir(ckpt_dir)) == [f"step={MAX_STEPS}.ckpt", "last.ckpt"]
