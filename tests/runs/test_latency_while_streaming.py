"""The server keeps answering completion while a run streams thousands of events per second."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from lsprotocol import types
from runs_support import fake_interpreter, lsp_session, write_workspace


async def test_completion_latency_stays_bounded_during_an_event_flood(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws")
    monkeypatch.setenv("FAKE_STEPS", "10000")  # 2 epochs x 10,000 progress events
    monkeypatch.setenv("FAKE_RATE", "5000")
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        line = next(i for i, text in enumerate((root / "model.py").read_text().splitlines())
                    if "def training_step" in text)
        params = types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                        position=types.Position(line=line, character=8))
        await s.client.text_document_completion_async(params)  # warm the converters
        started = time.perf_counter()
        result = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel"})
        run_id = result["runId"]
        await s.wait_for(lambda: s.events_of(run_id, "progress"))
        latencies = []
        while not s.events_of(run_id, "finished") and len(latencies) < 400:
            start = time.perf_counter()
            await s.client.text_document_completion_async(params)
            latencies.append(time.perf_counter() - start)
        await s.wait_for(lambda: s.events_of(run_id, "finished"), timeout=60)
        # the progress ends once the child exited and its event log was closed
        await s.wait_for(lambda: any(isinstance(r, types.WorkDoneProgressEnd)
                                     for rs in s.client.progress_reports.values() for r in rs))
        stored = (root / ".torchbolt" / "runs" / run_id / "events.jsonl").read_bytes().count(b"\n")
        elapsed = time.perf_counter() - started
        refreshes = s.hint_refreshes
    assert stored == 1 + 2 + 20_000 + 2 + 2 + 1  # nothing was dropped
    assert len(latencies) >= 20
    assert 1 <= refreshes <= elapsed / 0.5 + 2  # inlay-hint refreshes are rate-limited (one per 0.5 s at most)
    # generous bounds (2-core CI box): the point is "no backlog", not a tight number
    assert statistics.median(latencies) < 0.5, latencies
    assert statistics.quantiles(latencies, n=20)[-1] < 1.0, sorted(latencies)[-5:]  # p95
