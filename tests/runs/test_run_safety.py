"""Runs never start workspace code without an explicit action, ask for trust where the editor cannot,
and leave nothing behind (server killed, history bounded). Synthetic runtime: no torch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from runs_support import FAKE_RUNTIME, PYTHON, lsp_session, write_workspace
from torchbolt_lsp.runs.record import RunRecord
from torchbolt_lsp.runs.store import RunStore
from torchbolt_lsp.runs.trust import TrustStore


def _marker_interpreter(root: Path, marker: Path, name: str = "script") -> Path:
    """A workspace-local "interpreter" that records each start in `marker`, then acts as the runtime."""
    script = root / name
    script.write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexec {PYTHON} {FAKE_RUNTIME} "$@"\n')
    script.chmod(0o755)
    return script


def _starts(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


async def _lenses_hints_actions(s: Any, uri: str) -> None:
    doc = types.TextDocumentIdentifier(uri=uri)
    await s.client.text_document_code_lens_async(types.CodeLensParams(text_document=doc))
    await s.client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=doc, range=types.Range(types.Position(0, 0), types.Position(100, 0))))
    await s.client.text_document_code_action_async(types.CodeActionParams(
        text_document=doc, range=types.Range(types.Position(12, 0), types.Position(12, 0)),
        context=types.CodeActionContext(diagnostics=[])))


async def test_opening_a_file_never_starts_the_configured_interpreter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_STEPS", "3")
    marker = tmp_path / "starts.txt"
    root = write_workspace(tmp_path / "ws", run_table='interpreter = "./script"')
    _marker_interpreter(root, marker)
    # a clone that ships run history (or a folder run in an earlier session) must not matter either
    old = RunRecord(run_id="old", key=f"{root / 'model.py'}::LitModel", fn="fit", uri=(root / "model.py").as_uri(),
                    label="LitModel", status="success")
    RunStore(root).write_summary(old)
    async with lsp_session(root) as s:
        uri = await s.open()
        await _lenses_hints_actions(s, uri)
        assert (await s.command("torchbolt.runs", {"uri": uri}))["workers"] == {}
        assert _starts(marker) == []

        # the user's first run starts the interpreter; afterwards a worker for the next run may be warmed
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.ended(result["runId"])
        await s.wait_for(lambda: any("warm run worker" in m.message for m in s.client.log_messages))
        assert [line.split()[:2] for line in _starts(marker)] == [["-m", "torchbolt"], ["-m", "torchbolt.worker"]]
        assert (await s.command("torchbolt.runs", {"uri": uri}))["workers"] == {}  # that fake worker exited

        # the env changed since that run: showing lenses starts nothing
        (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text().replace(
            'interpreter = "./script"', 'interpreter = "./script"\nenv = { PYTHONPATH = "evil" }'))
        await _lenses_hints_actions(s, uri)
        assert (await s.command("torchbolt.runs", {"uri": uri}))["workers"] == {}
        # the interpreter itself changed (same path, new content): nothing either
        (root / "pyproject.toml").write_text((root / "pyproject.toml").read_text().replace(
            '\nenv = { PYTHONPATH = "evil" }', ""))
        _marker_interpreter(root, tmp_path / "other-marker.txt")
        await _lenses_hints_actions(s, uri)
        assert (await s.command("torchbolt.runs", {"uri": uri}))["workers"] == {}
        assert len(_starts(marker)) == 2 and _starts(tmp_path / "other-marker.txt") == []


async def test_untrusted_folder_asks_and_remembers_trust(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_STEPS", "3")
    marker = tmp_path / "starts.txt"
    root = write_workspace(tmp_path / "ws", run_table='interpreter = "./script"')
    _marker_interpreter(root, marker)
    trust_file = tmp_path / "trusted.json"

    # Cancel: nothing runs, nothing is stored, no second message about it
    async with lsp_session(root, trusted=None, answer="Cancel") as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert result["cancelled"] is True
        (prompt,) = s.message_requests
        assert [a.title for a in prompt.actions] == ["Run once", "Trust this folder", "Cancel"]
        assert str(root) in prompt.message
        assert _starts(marker) == [] and not trust_file.exists() and not (root / ".torchbolt").exists()
        assert not [m for m in s.client.messages if "cancelled" in m.message]

    # Run once: runs, asks again next time, remembers nothing
    async with lsp_session(root, trusted=None, answer="Run once") as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.ended(result["runId"])
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.ended(result["runId"])
        assert len(s.message_requests) == 2 and not trust_file.exists()
        assert (await s.command("torchbolt.runs", {"uri": uri}))["workers"] == {}  # no worker without trust

    # Trust this folder: stored per user (outside the workspace), not asked again, in a later session too
    async with lsp_session(root, trusted=None, answer="Trust this folder") as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        await s.ended(result["runId"])
        assert len(s.message_requests) == 1
    assert TrustStore(trust_file).is_trusted(root / "sub")
    async with lsp_session(root, trusted=None, answer="Cancel") as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert "runId" in result and not s.message_requests
        await s.ended(result["runId"])
    # initializationOptions.trusted = false (VS Code's restricted mode) still wins over the store
    async with lsp_session(root, trusted=False, answer="Run once") as s:
        uri = await s.open()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        assert "not trusted" in result["error"] and not s.message_requests


def _answers(url: str) -> bool:
    host, port = url.split("//")[1].rstrip("/").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


async def _gone(check: Any, timeout: float = 30.0) -> bool:
    """Poll `check()` until it is true: process exit has no message to wait on."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet because its parent died) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


async def test_a_killed_server_takes_its_runs_and_tensorboard_along(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    (root / "lightning_logs").mkdir()
    monkeypatch.setenv("TORCHBOLT_SHOW_DOCUMENT_TIMEOUT_S", "1")
    monkeypatch.setenv("FAKE_STEPS", "1000000")
    monkeypatch.setenv("FAKE_RATE", "200")
    script = _marker_interpreter(root, tmp_path / "starts.txt")
    async with lsp_session(root) as s:
        # a client whose showDocument reply is off-spec must not hang openTensorBoard
        s.client.protocol.fm.features[types.WINDOW_SHOW_DOCUMENT] = lambda params: {"nonsense": True}
        uri = await s.open()
        tb = await s.command("torchbolt.openTensorBoard", {"uri": uri})
        assert tb["shown"] is False and _answers(tb["url"])
        await s.wait_for(lambda: any(tb["url"] in m.message for m in s.client.messages))
        # nor one that never answers: the command returns after the timeout, with the URL as a message

        gate = asyncio.Event()

        async def never(params: Any) -> None:
            await gate.wait()  # (released below, so the client task does not outlive the test)

        s.client.protocol.fm.features[types.WINDOW_SHOW_DOCUMENT] = never
        shown = len([m for m in s.client.messages if tb["url"] in m.message])
        again = await asyncio.wait_for(s.command("torchbolt.openTensorBoard", {"uri": uri}), 30)
        assert again == tb
        assert len([m for m in s.client.messages if tb["url"] in m.message]) == shown + 1
        gate.set()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel",
                                                   "overrides": {"interpreter": str(script)}})
        await s.wait_for(lambda: s.events_of(result["runId"], "progress"))
        server = s.client._server
        assert server is not None
        server.send_signal(signal.SIGKILL)
        await server.wait()
        assert await _gone(lambda: not _alive(result["pid"])), "the run outlived the killed server"
        assert await _gone(lambda: not _answers(tb["url"])), "TensorBoard outlived the killed server"
        summary = root / ".torchbolt" / "runs" / result["runId"] / "summary.json"
        assert json.loads(summary.read_text())["status"] in ("starting", "running")  # nobody could update it

    # the next server fixes the record
    async with lsp_session(root) as s:
        uri = await s.open()
        (row,) = (await s.command("torchbolt.runs", {"uri": uri}))["runs"]
        assert row["status"] == "interrupted"
        assert json.loads(summary.read_text())["status"] == "interrupted"


def test_lifeline_stops_the_runtime_when_the_server_end_closes(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    code = ("import time\nfrom torchbolt.callbacks.event_stream import watch_lifeline\n"
            "assert watch_lifeline()\nprint('ready', flush=True)\ntime.sleep(60)\n")
    import subprocess

    env = {**os.environ, "TORCHBOLT_LIFELINE": f"fd:{read_fd}"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=(read_fd,), stdout=subprocess.PIPE,
                            start_new_session=True)
    os.close(read_fd)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    os.close(write_fd)  # what the kernel does when the server dies
    assert proc.wait(timeout=30) == -signal.SIGTERM


def _record(run_id: str, started: float, value: float | None, key: str = "a.py::M") -> RunRecord:
    rec = RunRecord(run_id=run_id, key=key, fn="fit", uri="file:///a.py", label="M", status="success",
                    started_at=started)
    if value is not None:
        rec.latest["val_loss"] = value
    return rec


def test_history_keeps_the_last_and_best_runs_within_a_size_cap(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    values = [0.1, 0.9, 0.8, 0.7, 0.6, 0.5]  # the oldest run is the best one
    records = [_record(f"r{i}", 1000.0 + i, v) for i, v in enumerate(values)]
    for rec in records:
        store.write_summary(rec)
        (store.run_dir(rec.run_id) / "events.jsonl").write_bytes(b"x" * 1000)
    from torchbolt_lsp.runs.manager import _score

    removed = store.prune(records, keep_last=2, keep_best=1, max_bytes=10**9, keep={"r2"}, score=_score)
    assert removed == ["r1", "r3"]  # kept: best r0, active r2, last two r4 r5
    assert sorted(p.name for p in store.root.iterdir()) == ["r0", "r2", "r4", "r5"]
    left = [r for r in records if r.run_id not in removed]
    # over the cap: the oldest go first, never the active run nor the newest
    removed = store.prune(left, keep_last=2, keep_best=1, max_bytes=2500, keep={"r2"}, score=_score)
    assert removed == ["r0", "r4"]
    assert sorted(p.name for p in store.root.iterdir()) == ["r2", "r5"]
    # a summary's run_id is data: nothing outside the runs folder is ever deleted
    assert store.remove("..") is False and store.remove("../x") is False and tmp_path.is_dir()


async def test_notifications_waiting_for_the_next_publish_are_bounded(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from torchbolt import events as ev
    from torchbolt_lsp.runs.manager import OUTPUT_LIMIT, PENDING_LIMIT, ActiveRun, RunManager
    from torchbolt_lsp.runs.record import HISTORY_LIMIT
    from torchbolt_lsp.runs.targets import Target

    manager = RunManager(SimpleNamespace(context=None))
    record = RunRecord(run_id="r", key="k", fn="fit", uri="file:///m.py", label="M")
    run = ActiveRun(record=record, target=Target("module", "M", str(tmp_path / "m.py"), 0, 0, 1), folder=str(tmp_path))
    flood = [ev.Metrics(run_id="r", epoch=0, step=i, scope="step", metrics={"loss": float(i)}) for i in range(5000)]
    manager._on_events(run, [b"{}"] * len(flood), flood, [])
    manager._on_output(run, "stdout", [f"line {i}" for i in range(10000)])
    assert run.flush_handle is not None
    run.flush_handle.cancel()
    # the newest are kept for the client; the record (and events.jsonl) got every event
    assert len(run.pending) == PENDING_LIMIT and run.pending[-1].step == 4999
    assert len(run.output) == OUTPUT_LIMIT and run.output[-1] == "line 9999"
    assert len(record.history["loss"]) == HISTORY_LIMIT and record.events_seen == 5000
