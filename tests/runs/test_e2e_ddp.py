"""End to end, two processes: a Fit lens with `devices = 2` (CPU, gloo) run by the real server and runtime.

One event stream (rank 0's) reaches the editor: progress, metrics and the end of the run once, with the
hardware the run used; a crash on rank 1 becomes a diagnostic at the raising line that names the rank.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from lsprotocol import types
from runs_support import MODEL, lsp_session, write_workspace

pytestmark = pytest.mark.slow

DDP = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "max_epochs": 2}
HARDWARE = "cpu ×2 · ddp · 32-true"
#: Every rank leaves its pid in the workspace, so the test can check that none outlives the run.
PIDS = MODEL + '''
    def on_train_start(self):
        import os
        open(f"pid{os.getpid()}", "w").close()
'''
#: Generous bounds for a run of two fresh processes on a loaded CI machine; a hang fails here, not at the CI limit.
RUN_TIMEOUT_S = 120


def _alive(pid: int) -> bool:
    """A live process (a zombie waiting for its reaper has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


async def _none_left(pids: list[int], within_s: float = 10.0) -> list[int]:
    """The pids still alive after up to `within_s` seconds (a rank ends shortly after rank 0 reports)."""
    deadline = time.monotonic() + within_s
    alive = [pid for pid in pids if _alive(pid)]
    while alive and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        alive = [pid for pid in pids if _alive(pid)]
    for pid in alive:  # leave nothing behind for the next test, then fail
        os.kill(pid, signal.SIGKILL)
    return alive


def _rank_pids(root: Path) -> list[int]:
    return sorted(int(p.name[3:]) for p in root.glob("pid*"))


async def _ended(s, run_id: str) -> None:
    await s.wait_for(lambda: s.events_of(run_id, "finished") or s.events_of(run_id, "failed"), RUN_TIMEOUT_S)
    await s.wait_for(lambda: s.run_states and s.run_states[-1]["runId"] == run_id
                     and not s.run_states[-1]["active"], 30)


async def test_ddp_fit_from_a_lens_reports_once_with_its_hardware(tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", model=PIDS, trainer=DDP)
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await _ended(s, run_id)
        assert "--trainer.devices" in result["command"] and "--trainer.strategy" in result["command"]

        # one stream: rank 0's, with the run's hardware
        (started,) = s.events_of(run_id, "run_started")
        assert {k: started[k] for k in ("accelerator", "devices", "device_ids", "strategy", "precision",
                                        "num_nodes", "world_size")} == {
            "accelerator": "cpu", "devices": 2, "device_ids": [0, 1], "strategy": "ddp", "precision": "32-true",
            "num_nodes": 1, "world_size": 2}
        assert started["pid"] == result["pid"]
        assert [e["epoch"] for e in s.events_of(run_id, "epoch_started")] == [0, 1]
        assert [e["epoch"] for e in s.events_of(run_id, "metrics") if e["scope"] == "epoch"] == [0, 1]
        assert [e["epoch"] for e in s.events_of(run_id, "validation_end")] == [0, 1]
        progress = [(e["stage"], e["epoch"], e["batch"]) for e in s.events_of(run_id, "progress")]
        assert progress and len(set(progress)) == len(progress), progress  # no batch reported twice
        # each rank trains on half the 64 samples: 4 batches of 8 per epoch
        assert all(e["total"] == 4 for e in s.events_of(run_id, "epoch_started"))
        (finished,) = s.events_of(run_id, "finished")
        assert finished["status"] == "success" and finished["global_step"] == 8

        # the status and the end-of-run summary say where it ran
        state = s.run_states[-1]
        assert state["hardware"] == HARDWARE and state["worldSize"] == 2
        assert state["message"].startswith("done") and state["message"].endswith(HARDWARE)
        await s.wait_for(lambda: any(m.message.startswith("Fit LitModel: done") for m in s.client.messages), 30)
        done = next(m.message for m in s.client.messages if m.message.startswith("Fit LitModel: done"))
        assert HARDWARE in done
        line = next(i for i, t in enumerate(PIDS.splitlines()) if '"val_loss"' in t)
        hover = await s.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line, PIDS.splitlines()[line].index("val_loss") + 2)))
        assert f"on {HARDWARE}" in hover.contents.value
        runs = (await s.command("torchbolt.runs", {"uri": uri}))["runs"]
        assert runs[0]["hardware"] == HARDWARE

        pids = _rank_pids(root)
        assert len(pids) == 2 and result["pid"] in pids
        assert await _none_left(pids) == []

        # the next Fit runs in the warm worker, which starts rank 1 as `python -m torchbolt fit ...`
        await s.wait_for(lambda: any("warm run worker ready" in m.message for m in s.client.log_messages),
                         RUN_TIMEOUT_S)
        for p in root.glob("pid*"):
            p.unlink()
        again = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert again["warm"] is True
        await _ended(s, again["runId"])
        (finished,) = s.events_of(again["runId"], "finished")
        assert finished["status"] == "success" and finished["global_step"] == 8
        assert len(s.events_of(again["runId"], "run_started")) == 1
        assert len(_rank_pids(root)) == 2


async def test_a_crash_on_rank_one_is_a_diagnostic_naming_the_rank(tmp_path: Path) -> None:
    broken = PIDS.replace("        return loss\n",
                          "        if self.global_rank == 1 and batch_idx == 2:\n"
                          "            raise ValueError('rank one went sideways')\n"
                          "        return loss\n", 1)
    root = write_workspace(tmp_path / "ws", model=broken, trainer={**DDP, "max_epochs": 50})
    raising = next(i for i, t in enumerate(broken.splitlines()) if "raise ValueError" in t)
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await _ended(s, result["runId"])
        (failed,) = s.events_of(result["runId"], "failed")
        assert failed["rank"] == 1 and failed["phase"] == "run"
        assert failed["error_type"] == "ValueError" and failed["message"] == "rank one went sideways"
        assert failed["frames"][-1]["line"] == raising + 1  # rank 1's own traceback, not rank 0's lost connection
        assert not s.events_of(result["runId"], "finished")

        await s.wait_for(lambda: any(d.source == "torchbolt run" for d in s.client.diagnostics.get(uri, ())), 30)
        (diag,) = [d for d in s.client.diagnostics[uri] if d.source == "torchbolt run"]
        assert diag.range.start.line == raising
        assert diag.message == "ValueError: rank one went sideways (on rank 1, during the run)"
        assert diag.severity == types.DiagnosticSeverity.Error
        await s.wait_for(lambda: any("failed on rank 1: ValueError: rank one went sideways" in m.message
                                     for m in s.client.messages), 30)
        assert s.run_states[-1]["message"] == "failed: ValueError on rank 1"

        # both ranks are gone (the run stopped at epoch 0 of 50: nothing waited on a dead peer)
        pids = _rank_pids(root)
        assert len(pids) == 2
        assert await _none_left(pids) == []


async def test_stop_ends_every_rank(tmp_path: Path) -> None:
    slow = PIDS.replace("        return loss\n", "        import time; time.sleep(0.02)\n        return loss\n", 1)
    root = write_workspace(tmp_path / "ws", model=slow, trainer={**DDP, "max_epochs": 1000})
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await s.wait_for(lambda: any(e["stage"] == "train" and e["epoch"] >= 1
                                     for e in s.events_of(run_id, "progress")), RUN_TIMEOUT_S)
        assert (await s.command("torchbolt.stop", {"runId": run_id}))["stopped"] is True
        await _ended(s, run_id)
        assert not s.events_of(run_id, "failed"), s.events_of(run_id, "failed")
        (finished,) = s.events_of(run_id, "finished")
        assert finished["status"] == "interrupted" and finished["epochs"] < 1000
        assert s.run_states[-1]["status"] == "interrupted"
        pids = _rank_pids(root)
        assert len(pids) == 2
        assert await _none_left(pids) == []


async def test_ddp_spawn_fit_from_a_lens_streams_rank_zero_once(tmp_path: Path) -> None:
    """strategy = "ddp_spawn": the ranks are processes the Trainer starts, and rank 0's events still reach the
    editor through the launching process, once."""
    root = write_workspace(tmp_path / "ws", model=PIDS, trainer={**DDP, "strategy": "ddp_spawn"})
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await _ended(s, run_id)
        (started,) = s.events_of(run_id, "run_started")
        assert started["strategy"] == "ddp_spawn" and started["world_size"] == 2
        assert started["pid"] != result["pid"]  # rank 0 is a process the Trainer started
        assert [e["epoch"] for e in s.events_of(run_id, "epoch_started")] == [0, 1]
        assert [e["epoch"] for e in s.events_of(run_id, "validation_end")] == [0, 1]
        assert s.events_of(run_id, "progress")
        (finished,) = s.events_of(run_id, "finished")
        assert finished["status"] == "success" and finished["global_step"] == 8
        assert s.run_states[-1]["hardware"] == "cpu ×2 · ddp_spawn · 32-true"
        pids = _rank_pids(root)
        assert len(pids) == 2 and result["pid"] not in pids
        assert await _none_left(pids) == []
