"""SIGKILL at random moments: a child process fits with a checkpoint every step (multi-MB files, so kills
land mid-write) and is killed again and again, each time resuming from "last". Every `.ckpt` left behind
must load, and a final run resuming from "last" must complete."""

from __future__ import annotations

import os
import pathlib
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from torchbolt.checkpoint.io import TMP_SUFFIX, safe_load

KILLS = 20
UNREACHED = 100_000  # max_steps of the runs that get killed

# A "zygote" imports torch and torchbolt once, then forks one child per run (importing torch twenty times
# would take most of the test's time). It runs no torch operation itself, so forking is safe.
ZYGOTE = textwrap.dedent(
    """
    import os, sys, traceback
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    import torchbolt
    from torchbolt.callbacks import ModelCheckpoint

    root = sys.argv[1]

    class Big(torchbolt.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(384, 384)  # ~0.6 MB of weights + ~0.6 MB of momentum per checkpoint

        def training_step(self, batch, batch_idx):
            (x,) = batch
            return self.layer(x).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1e-3, momentum=0.9)

    class Ready(torchbolt.Callback):
        # at the start of a batch after at least one step: some checkpoint (and last.ckpt) exists by then
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step >= 1 and not getattr(self, "said", False):
                self.said = True
                print("READY", trainer.global_step, flush=True)

    def run(max_steps):
        torch.set_num_threads(1)
        data = DataLoader(TensorDataset(torch.randn(64, 384, generator=torch.Generator().manual_seed(0))),
                          batch_size=8, shuffle=True)
        ckpt = ModelCheckpoint(dirpath=os.path.join(root, "ckpts"), every_n_train_steps=1, save_last=True,
                               filename="{step}")
        last = os.path.join(root, "ckpts", "last.ckpt")
        trainer = torchbolt.Trainer(default_root_dir=root, max_steps=max_steps, max_epochs=-1, logger=False,
                                    enable_progress_bar=False, enable_model_summary=False,
                                    callbacks=[ckpt, Ready()], num_sanity_val_steps=0)
        trainer.fit(Big(), data, ckpt_path="last" if os.path.exists(last) else None)
        print("DONE", trainer.global_step, flush=True)

    print("ZYGOTE", flush=True)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run(int(line.split()[1]))
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        print("PID", pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print("EXIT", os.waitstatus_to_exitcode(status), flush=True)
    """
)


class _Lines:
    """The zygote's stdout lines, read by a thread so every wait has a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.queue.put(line.strip())
        self.queue.put(None)

    def expect(self, prefix: str, timeout: float = 120.0, fail_on: tuple[str, ...] = ()) -> str:
        """The next line starting with `prefix`; other lines (warnings) are skipped."""
        while True:
            try:
                line = self.queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line from the zygote within {timeout} s") from None
            if line is None:
                raise AssertionError(f"zygote ended while waiting for {prefix!r}")
            if line.startswith(prefix):
                return line
            if line.startswith(fail_on):
                raise AssertionError(f"got {line!r} while waiting for {prefix!r}")


@pytest.mark.slow
def test_sigkill_never_leaves_a_broken_checkpoint(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "zygote.py"
    script.write_text(ZYGOTE)
    log = (tmp_path / "zygote.err").open("w")  # a file, not a pipe: the zygote's stderr is never drained
    zygote = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=log, text=True)
    lines = _Lines(zygote)
    assert zygote.stdin is not None
    try:
        lines.expect("ZYGOTE")
        rng = random.Random(20260427)
        ckpt_dir = tmp_path / "ckpts"
        last_steps: list[int] = []
        kills = attempts = 0
        mid_write = 0  # kills that left a partial temporary file behind
        while kills < KILLS:
            attempts += 1
            assert attempts < KILLS * 2, "the child kept finishing before it could be killed"
            zygote.stdin.write(f"go {UNREACHED}\n")
            zygote.stdin.flush()
            pid = int(lines.expect("PID").split()[1])
            lines.expect("READY", fail_on=("EXIT",))  # a checkpoint exists by now
            time.sleep(rng.uniform(0.0, 0.4))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            code = int(lines.expect("EXIT").split()[1])
            if code != -signal.SIGKILL:
                assert code == 0
                continue  # finished before the kill arrived; try again
            kills += 1
            mid_write += any(p.name.endswith(TMP_SUFFIX) for p in ckpt_dir.iterdir())
            # every complete-named file loads; partial writes only ever exist under temporary names
            for path in sorted(ckpt_dir.glob("*.ckpt")):
                checkpoint = safe_load(path)
                assert set(checkpoint) >= {"state_dict", "optimizer_states", "loops", "global_step"}, path
            last_steps.append(safe_load(ckpt_dir / "last.ckpt")["global_step"])
        # progress only moves forward across kills: each run resumed from the previous run's last checkpoint
        assert last_steps == sorted(last_steps)
        assert last_steps[-1] > last_steps[0]

        # kills landed inside checkpoint writes too, not only between them
        assert mid_write >= 1, "no kill hit a checkpoint write; the test did not exercise what it should"

        final_steps = last_steps[-1] + 10
        zygote.stdin.write(f"go {final_steps}\n")
        zygote.stdin.flush()
        lines.expect("PID")
        assert lines.expect("DONE", timeout=300, fail_on=("EXIT",)) == f"DONE {final_steps}"
        assert lines.expect("EXIT") == "EXIT 0"
    except AssertionError as err:
        zygote.kill()
        raise AssertionError(f"{err}\n--- zygote stderr ---\n{(tmp_path / 'zygote.err').read_text()[-4000:]}") from None
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
        log.close()
    assert safe_load(ckpt_dir / "last.ckpt")["global_step"] == final_steps
    # the final run cleaned up the temporary files of killed writers
    assert not [p for p in os.listdir(ckpt_dir) if p.endswith(TMP_SUFFIX)]
    # the tracked top-1 file is the final step's; files orphaned by a kill between a step file and
    # last.ckpt (as in Lightning, a `-v1` twin appears for them) are complete and load
    assert (ckpt_dir / f"step={final_steps}.ckpt").exists()
    for path in ckpt_dir.glob("*.ckpt"):
        safe_load(path)
