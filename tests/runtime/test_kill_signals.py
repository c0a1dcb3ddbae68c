"""Ctrl-C (SIGINT) and SIGTERM during fit, in a child process: the current step finishes, on_exception
(callbacks, DataModule), teardown and the loggers' finalize("failed") run, OnExceptionCheckpoint saves,
and the process exits non-zero. A second Ctrl-C stops at once."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from torchbolt.checkpoint.io import safe_load

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    import torchbolt
    from torchbolt.callbacks import OnExceptionCheckpoint
    from torchbolt.loggers import Logger

    root, step_seconds = sys.argv[1], float(sys.argv[2])
    mode = sys.argv[3]  # "train": signal during a training step; "val_train" the same with validation set up;
                        # "val_val": signal during a validation batch; "train_end": in on_train_end
    events = open(os.path.join(root, "events.jsonl"), "a", buffering=1)

    def note(kind, **data):
        events.write(json.dumps({"kind": kind, **data}) + "\\n")

    class Slow(torchbolt.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            note("step_start", step=self.global_step)
            if mode in ("train", "val_train") and self.global_step == 2:
                print("READY", flush=True)  # the parent signals while this step sleeps
                time.sleep(step_seconds)
            loss = self.layer(batch).sum()
            note("step_end", step=self.global_step)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def on_train_end(self):
            if mode == "train_end":
                print("READY", flush=True)  # the parent signals after the last step
                time.sleep(step_seconds)
                note("train_end_done")

    class Data(torchbolt.LightningDataModule):
        def train_dataloader(self):
            return DataLoader(torch.ones(400, 2), batch_size=2)

        def on_exception(self, exception):
            note("datamodule_on_exception", type=type(exception).__name__)

    class Hooks(torchbolt.Callback):
        def on_exception(self, trainer, pl_module, exception):
            note("callback_on_exception", type=type(exception).__name__, interrupted=trainer.interrupted)

        def teardown(self, trainer, pl_module, stage):
            note("teardown", stage=stage)

    class Recorder(Logger):
        name, version = "rec", 0

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, *args, **kwargs):
            pass

        def finalize(self, status):
            note("finalize", status=status)

    class SlowVal(Slow):
        def validation_step(self, batch, batch_idx):
            note("val_start", idx=batch_idx)
            if mode == "val_val" and batch_idx == 2:
                print("READY", flush=True)  # the parent signals while this validation batch sleeps
                time.sleep(step_seconds)
            note("val_end", idx=batch_idx)

    class ValData(Data):
        def val_dataloader(self):
            return DataLoader(torch.ones(100, 2), batch_size=2)

    plain = mode in ("train", "train_end")
    trainer = torchbolt.Trainer(
        default_root_dir=root, max_epochs=1, logger=[Recorder()], enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, val_check_interval=5 if not plain else 1.0,
        callbacks=[Hooks(), OnExceptionCheckpoint(root, filename="interrupted")],
    )
    trainer.fit(Slow() if plain else SlowVal(), datamodule=Data() if plain else ValData())
    note("fit_returned")
    """
)


def _events(root: pathlib.Path) -> list[dict[str, object]]:
    path = root / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run_until_ready(tmp_path: pathlib.Path, step_seconds: float, mode: str = "train") -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(step_seconds), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        pytest.fail(f"child did not reach the signal point: {line!r} {proc.communicate()[1][-2000:]}")
    return proc


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_after_current_step_and_cleans_up(tmp_path: pathlib.Path, sig: int, code: int) -> None:
    proc = _run_until_ready(tmp_path, step_seconds=1.0)
    proc.send_signal(sig)  # arrives while step 2 sleeps
    _, err = proc.communicate(timeout=120)
    # KeyboardInterrupt escaping Python ends the process by SIGINT (-2); SystemExit(143) for SIGTERM
    assert proc.returncode in (code, -sig), (proc.returncode, err[-2000:])
    events = _events(tmp_path)
    kinds = [e["kind"] for e in events]
    starts = [e["step"] for e in events if e["kind"] == "step_start"]
    ends = [e["step"] for e in events if e["kind"] == "step_end"]
    # the step in progress finished, and no further step started
    assert starts == ends == [0, 1, 2], kinds
    tail = [k for k in kinds if k not in ("step_start", "step_end")]
    assert tail[:2] == ["callback_on_exception", "datamodule_on_exception"], tail
    assert "finalize" in tail and "teardown" in tail and "fit_returned" not in tail
    assert [e["status"] for e in events if e["kind"] == "finalize"] == ["failed"]
    exc_event = next(e for e in events if e["kind"] == "callback_on_exception")
    assert exc_event["type"] in ("KeyboardInterrupt", "SystemExit")
    checkpoint = safe_load(tmp_path / "interrupted.ckpt")
    assert checkpoint["global_step"] == 3  # the three completed optimizer steps


def test_sigterm_after_the_last_step_still_exits_non_zero(tmp_path: pathlib.Path) -> None:
    """A stop request in on_train_end (or on_fit_end, teardown) finds no step left to stop after; the run completes,
    but the process does not go on past `fit` as if nobody had asked it to end."""
    proc = _run_until_ready(tmp_path, step_seconds=1.0, mode="train_end")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, err[-2000:])
    kinds = [e["kind"] for e in _events(tmp_path)]
    assert "train_end_done" in kinds and "teardown" in kinds and "fit_returned" not in kinds
    assert kinds.count("step_end") == 200  # every step of the epoch ran: the signal came after them
    assert "callback_on_exception" not in kinds  # the run itself completed


def test_second_ctrl_c_exits_at_once(tmp_path: pathlib.Path) -> None:
    proc = _run_until_ready(tmp_path, step_seconds=30.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=25)  # far less than the 30 s step: it did not wait for the step to end
    assert proc.returncode != 0
    ends = [e for e in _events(tmp_path) if e["kind"] == "step_end"]
    assert [e["step"] for e in ends] == [0, 1]  # step 2 never completed


def _cleaned_up(events: list[dict[str, object]]) -> None:
    kinds = [e["kind"] for e in events]
    assert "callback_on_exception" in kinds and "datamodule_on_exception" in kinds, kinds
    assert "teardown" in kinds and "fit_returned" not in kinds
    assert [e["status"] for e in events if e["kind"] == "finalize"] == ["failed"]


def test_signal_mid_epoch_skips_the_validation_that_step_would_trigger(tmp_path: pathlib.Path) -> None:
    # Validation every 5 batches; the signal comes during step 2. Stopping must not first run a validation
    # pass (which used to run all 50 validation batches before the run ended).
    proc = _run_until_ready(tmp_path, step_seconds=1.0, mode="val_train")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (143, -signal.SIGTERM), (proc.returncode, err[-2000:])
    events = _events(tmp_path)
    assert [e["step"] for e in events if e["kind"] == "step_end"] == [0, 1, 2]
    assert not [e for e in events if e["kind"] in ("val_start", "val_end")]
    _cleaned_up(events)
    assert safe_load(tmp_path / "interrupted.ckpt")["global_step"] == 3


def test_signal_during_validation_stops_after_the_current_batch(tmp_path: pathlib.Path) -> None:
    proc = _run_until_ready(tmp_path, step_seconds=1.0, mode="val_val")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err[-2000:])
    events = _events(tmp_path)
    assert [e["step"] for e in events if e["kind"] == "step_end"] == [0, 1, 2, 3, 4]  # validation after batch 5
    assert [e["idx"] for e in events if e["kind"] == "val_end"] == [0, 1, 2]  # the batch in progress finished
    assert [e["idx"] for e in events if e["kind"] == "val_start"] == [0, 1, 2]  # and no further one started
    _cleaned_up(events)
