"""Find LR and profiled runs through the real server, with the fake runtime (fast, no torch): the lens, the
`lr=` hint and quick fix, what the run record keeps, and the class-name hover."""

from __future__ import annotations

import json
from pathlib import Path

from lsprotocol import types
from runs_support import fake_interpreter, lsp_session, write_workspace

MODELS = '''\
import torch
import torchbolt as pl


class Lit(pl.LightningModule):
    def training_step(self, batch, batch_idx):
        return batch.sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)

    def train_dataloader(self):
        return []


class Hp(pl.LightningModule):
    def __init__(self, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()

    def training_step(self, batch, batch_idx):
        return batch.sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def train_dataloader(self):
        return []
'''
LINES = MODELS.splitlines()
LIT_LR = next(i for i, t in enumerate(LINES) if "lr=0.05" in t)
HP_LR = next(i for i, t in enumerate(LINES) if "lr=self.hparams.lr" in t)
HP_DEFAULT = next(i for i, t in enumerate(LINES) if "lr: float = 0.1" in t)


def _label(hint: types.InlayHint) -> str:
    return hint.label if isinstance(hint.label, str) else "".join(p.value for p in hint.label)


async def _hints(s, uri: str) -> list[types.InlayHint]:
    return await s.client.text_document_inlay_hint_async(types.InlayHintParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(0, 0), types.Position(len(LINES) + 1, 0)))) or []


async def _quick_fixes(s, uri: str, line: int, col: int) -> list[types.CodeAction]:
    actions = await s.client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(types.Position(line, col), types.Position(line, col)),
        context=types.CodeActionContext(diagnostics=[], only=[types.CodeActionKind.QuickFix])))
    return [a for a in actions or () if isinstance(a, types.CodeAction) and "learning rate" in a.title]


async def _hover(s, uri: str, line: int, word: str) -> str | None:
    hover = await s.client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line, LINES[line].index(word) + 1)))
    return hover.contents.value if hover is not None else None


async def test_find_lr_hint_quick_fix_record_and_hover(tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws", model=MODELS, run_table="lr_find = { min_lr = 1e-7, num_training = 99 }")
    monkeypatch.setenv("FAKE_STEPS", "3")
    async with lsp_session(root, run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        lit_line = next(i for i, t in enumerate(LINES) if t.startswith("class Lit"))
        assert await _hover(s, uri, lit_line, "Lit") is None  # no run yet: nothing to say on the class name
        bad = await s.command("torchbolt.lrFind", {"uri": uri, "className": "Lit", "lrFind": {"steps": 3}})
        assert "'lrFind' has no option 'steps'" in bad["error"] and "num_training" in bad["error"]
        assert not [h for h in await _hints(s, uri) if _label(h).startswith("Find LR")]

        result = await s.command("torchbolt.lrFind", {"uri": uri, "className": "Lit",
                                                      "lrFind": {"num_training": 30, "mode": "linear"}})
        cmd = result["command"]
        assert cmd[3:5] == ["lr-find", "model.py::Lit"]
        assert cmd[cmd.index("--lr_find.num_training") + 1] == "30"  # the command's option over pyproject's
        assert cmd[cmd.index("--lr_find.min_lr") + 1] == "1e-07" and cmd.count("--lr_find.num_training") == 1
        assert cmd[cmd.index("--lr_find.mode") + 1] == "linear"
        await s.ended(result["runId"])
        await s.wait_for(lambda: any("Find LR Lit: done · suggested lr 0.0123 (30 points)" in m.message
                                     for m in s.client.messages))

        # the record keeps the result, on disk too
        run_dir = root / ".torchbolt" / "runs" / result["runId"]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["fn"] == "lr_find"
        assert summary["lr_find"]["suggested_lr"] == 0.0123 and summary["lr_find"]["points"] == 30
        assert (run_dir / "lr_find.json").is_file()

        # the hint sits right after the lr= number of Lit.configure_optimizers; Hp has no result yet
        hints = [h for h in await _hints(s, uri) if _label(h).startswith("Find LR")]
        assert [(h.position.line, h.position.character, _label(h)) for h in hints] == [
            (LIT_LR, LINES[LIT_LR].index("0.05") + 4, "Find LR: suggested lr 0.0123 (30 points)")]

        # the quick fix on the value writes the suggestion in
        (fix,) = await _quick_fixes(s, uri, LIT_LR, LINES[LIT_LR].index("0.05") + 1)
        assert fix.title == f"Use the suggested learning rate 0.0123 (Find LR run {result['runId']})"
        (edit,) = fix.edit.changes[uri]
        start = LINES[LIT_LR].index("0.05")
        assert edit.new_text == "0.0123"
        assert (edit.range.start.line, edit.range.start.character, edit.range.end.character) == (
            LIT_LR, start, start + 4)
        assert not await _quick_fixes(s, uri, LIT_LR, 4)  # not on the line's other code

        # lr from self.hparams.lr: the hint says where to change it, and there is no rewrite
        result = await s.command("torchbolt.lrFind", {"uri": uri, "className": "Hp"})
        await s.ended(result["runId"])
        hints = [h for h in await _hints(s, uri) if h.position.line == HP_LR]
        assert [_label(h) for h in hints] == [
            "Find LR: suggested lr 0.0123 (30 points) · lr is self.hparams.lr: change the default of lr in "
            f"__init__ (line {HP_DEFAULT + 1}) or --model.lr"]
        assert not await _quick_fixes(s, uri, HP_LR, LINES[HP_LR].index("self.hparams") + 2)

        # the class name's hover: the latest run and its Find LR result
        text = await _hover(s, uri, lit_line, "Lit")
        assert text is not None
        assert f"last run `{result['runId']}`" not in text  # that was Hp's
        assert "Find LR Lit, done · suggested lr 0.0123 (30 points)" in text
        assert "suggested lr 0.0123 (30 points)" in text.split("Find LR (run")[1]

        # a Fit afterwards does not hide the result: the hint comes from the latest Find LR run
        fit = await s.command("torchbolt.fit", {"uri": uri, "className": "Lit"})
        await s.ended(fit["runId"])
        hints = [h for h in await _hints(s, uri) if h.position.line == LIT_LR]
        assert [_label(h) for h in hints] == ["Find LR: suggested lr 0.0123 (30 points)"]


async def test_profiled_run_keeps_its_summary_and_the_hover_shows_top_actions_lens_fallback(
        tmp_path: Path, monkeypatch) -> None:
    root = write_workspace(tmp_path / "ws", model=MODELS)
    monkeypatch.setenv("FAKE_STEPS", "3")
    monkeypatch.setenv("FAKE_LR", "none")
    async with lsp_session(root, profile="visual-studio-code", run={"interpreter": fake_interpreter(root)}) as s:
        uri = await s.open()
        fit = await s.command("torchbolt.fit", {"uri": uri, "className": "Lit", "overrides": {"profiler": "simple"}})
        await s.ended(fit["runId"])
        run_dir = root / ".torchbolt" / "runs" / fit["runId"]
        assert (run_dir / "profiler.json").is_file()
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["profiler"]["profiler"] == "SimpleProfiler"
        assert [a["name"] for a in summary["profiler"]["actions"]][:2] == ["action_7", "action_6"]

        lit_line = next(i for i, t in enumerate(LINES) if t.startswith("class Lit"))
        text = await _hover(s, uri, lit_line, "Lit")
        assert text is not None and f"SimpleProfiler of run `{fit['runId']}` (fit, 1.5 s profiled)" in text
        rows = [ln for ln in text.splitlines() if ln.startswith("| `action_")]
        assert rows == ["| `action_7` | 0.07 | 0.14 | 2 |", "| `action_6` | 0.06 | 0.12 | 2 |",
                        "| `action_5` | 0.05 | 0.1 | 2 |", "| `action_4` | 0.04 | 0.08 | 2 |",
                        "| `action_3` | 0.03 | 0.06 | 2 |"]  # the top 5 by total
        assert f"report: `.torchbolt/runs/{fit['runId']}/profiler.json`" in text

        # Find LR without a suggestion: a client without inlay hints gets the note as a code lens
        result = await s.command("torchbolt.lrFind", {"uri": uri, "className": "Lit"})
        await s.ended(result["runId"])
        lenses = await s.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        notes = [lens for lens in lenses if lens.command.title.startswith("Find LR:")]
        assert [(n.range.start.line, n.command.title) for n in notes] == [
            (LIT_LR, "Find LR: no lr suggested (30 points are too few: raise num_training or add training "
                     "batches)")]
        assert not await _quick_fixes(s, uri, LIT_LR, LINES[LIT_LR].index("0.05") + 1)
        # the lens row of each module: Find LR between Test and TensorBoard
        titles = [lens.command.title for lens in lenses if lens.range.start.line == lit_line]
        assert titles == ["▶ Fit", "Validate", "Test", "Find LR", "TensorBoard"]
        # the profiled run is still the one the hover shows, after a later run without a profiler
        text = await _hover(s, uri, lit_line, "Lit")
        assert f"SimpleProfiler of run `{fit['runId']}`" in text and f"last run `{result['runId']}`" in text
