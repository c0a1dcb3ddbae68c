"""End to end with the real runtime: the Find LR lens runs `torchbolt lr-find` (Tuner.lr_find) on a tiny
module, its suggestion lands next to `lr=` with a quick fix, and a fit with `profiler="simple"` keeps the
profiler's summary beside the run and shows its top actions in the class-name hover."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsprotocol import types
from runs_support import MODEL, lsp_session, write_workspace
from torchbolt_lsp.runs.artifacts import lr_literal

pytestmark = pytest.mark.slow

LINES = MODEL.splitlines()
LR_LINE = next(i for i, t in enumerate(LINES) if "lr=0.05" in t)
CLASS_LINE = next(i for i, t in enumerate(LINES) if t.startswith("class LitModel"))


async def test_find_lr_and_a_profiled_fit_with_the_real_runtime(tmp_path: Path) -> None:
    # lr_find stops at max_epochs too: 10 epochs of 8 batches leave room for its 30 steps
    root = write_workspace(tmp_path / "ws", trainer={"max_epochs": 10})
    async with lsp_session(root) as s:
        uri = await s.open()
        result = await s.command("torchbolt.lrFind", {"uri": uri, "className": "LitModel",
                                                      "lrFind": {"num_training": 30}})
        assert result["command"][3:5] == ["lr-find", "model.py::LitModel"], result
        await s.ended(result["runId"])
        assert not s.events_of(result["runId"], "failed"), s.events_of(result["runId"], "failed")

        # the runtime's own summary, kept in the run's folder, and what the record took from it
        run_dir = root / ".torchbolt" / "runs" / result["runId"]
        written = json.loads((run_dir / "lr_find.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["fn"] == "lr_find" and summary["status"] == "success"
        lr = written["suggested_lr"]
        assert lr is not None and 1e-8 <= lr <= 1.0
        assert summary["lr_find"]["suggested_lr"] == lr
        assert summary["lr_find"]["points"] == len(written["lr"]) > 10

        hints = await s.client.text_document_inlay_hint_async(types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(0, 0), types.Position(len(LINES), 0))))
        labels = [(h.position.line, h.label) for h in hints or () if str(h.label).startswith("Find LR")]
        assert labels == [(LR_LINE, f"Find LR: suggested lr {lr_literal(lr)} ({len(written['lr'])} points)")]

        col = LINES[LR_LINE].index("0.05")
        actions = await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(LR_LINE, col), types.Position(LR_LINE, col)),
            context=types.CodeActionContext(diagnostics=[])))
        (fix,) = [a for a in actions or () if isinstance(a, types.CodeAction) and "learning rate" in a.title]
        assert fix.kind == types.CodeActionKind.QuickFix
        assert [e.new_text for e in fix.edit.changes[uri]] == [lr_literal(lr)]

        # a fit with the simple profiler: its summary beside the run, its top actions in the hover
        fit = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel",
                                                "overrides": {"profiler": "simple", "max_epochs": 1, "limit_train_batches": 3,
                                                              "limit_val_batches": 2}})
        await s.ended(fit["runId"])
        profile = json.loads((root / ".torchbolt" / "runs" / fit["runId"] / "profiler.json").read_text())
        assert profile["profiler"] == "SimpleProfiler" and profile["stage"] == "fit"
        kept = json.loads((root / ".torchbolt" / "runs" / fit["runId"] / "summary.json").read_text())["profiler"]
        top = sorted(profile["actions"], key=lambda a: -a["total_s"])[:5]
        assert [a["name"] for a in kept["actions"][:5]] == [a["name"] for a in top]
        assert any(a["name"] == "run_training_epoch" and a["count"] == 1 for a in profile["actions"])
        # the printed report (no filename given) is kept beside the run too
        report = root / ".torchbolt" / "runs" / fit["runId"] / "profiler-report.txt"
        assert report.read_text().startswith("FIT Profiler Report")
        assert kept["report_file"] == str(report) and "Finished fit" not in report.read_text()

        hover = await s.client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(CLASS_LINE, LINES[CLASS_LINE].index("LitModel") + 2)))
        text = hover.contents.value
        assert f"SimpleProfiler of run `{fit['runId']}` (fit" in text
        rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
        assert [r.split("`")[1] for r in rows] == [a["name"] for a in top]
        assert f"Find LR (run `{result['runId']}`): suggested lr {lr_literal(lr)}" in text
        assert f"report: `.torchbolt/runs/{fit['runId']}/profiler-report.txt`" in text

        # a profiler that writes its own report file (filename given): a copy of this run's report is kept
        own = await s.command("torchbolt.fit", {"uri": uri, "className": "LitModel", "overrides": {
            "profiler": {"class_path": "torchbolt.profilers.SimpleProfiler", "init_args": {"filename": "perf"}},
            "max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1}})
        await s.ended(own["runId"])
        own_dir = root / ".torchbolt" / "runs" / own["runId"]
        kept_own = json.loads((own_dir / "summary.json").read_text())["profiler"]
        source = Path(json.loads((own_dir / "profiler.json").read_text())["report_file"])
        assert source.name == "fit-perf.txt" and source.is_file() and not source.is_relative_to(own_dir)
        assert kept_own["report_file"] == str(own_dir / "profiler-fit-perf.txt")
        assert (own_dir / "profiler-fit-perf.txt").read_text() == source.read_text()
        assert "FIT Profiler Report" in source.read_text()
