"""Re-indexing an open document after an edit reuses its previous parse and facts (analysis/parse_cache.py),
and must give exactly the facts a fresh parse gives; the server must not import pydantic or libcst to
answer `initialize`, edits, completion or diagnostics (they load at the first run / first quick fix)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_support import Editor
from lsprotocol import types
from torchbolt_lsp.analysis.facts import FactsCache, extract_facts
from torchbolt_lsp.analysis.parse_cache import DocumentParses
from torchbolt_lsp.server import create_server
from torchbolt_lsp.workspace_index import WorkspaceIndex

PATH = "/ws/proj/train.py"

SOURCE = textwrap.dedent(
    '''
    import lightning as L
    import torch
    from torch import nn


    class Net(L.LightningModule):
        def __init__(self, hidden: int = 8):
            super().__init__()
            self.save_hyperparameters()
            self.layer = nn.Linear(4, hidden)

        def training_step(self, batch, batch_idx):
            loss = self.layer(batch).sum()
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log_dict({"val_loss": 0.5, "val_acc": 1.0})

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}


    class Other(L.LightningModule):
        def training_step(self, batch, batch_idx):
            self.log(f"loss_{batch_idx}", 1.0)


    def callbacks():
        from lightning.pytorch.callbacks import ModelCheckpoint
        return [ModelCheckpoint(monitor="val_loss")]


    stopper = ModelCheckpoint(monitor="train_loss_epoch")
    model = Net()
    trainer = L.Trainer(max_epochs=3, callbacks=callbacks())
    trainer.fit(model)
    '''
).lstrip()


def fresh(text: str):
    """Facts of `text` computed from scratch (no cache): the reference every cached result must equal."""
    return WorkspaceIndex().facts_for_text(PATH, text)


def replace_line(text: str, needle: str, new: str) -> str:
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if needle in line)
    lines[index] = new
    return "\n".join(lines)


# Each edit is applied to the previous text, like keystrokes; the cache must follow every one of them.
EDITS = [
    ("edit inside a method", lambda t: t.replace('"train_loss", loss, on_step=True', '"train_los", loss, on_step=True')),
    ("monitor of the scheduler", lambda t: t.replace('"monitor": "val_loss"}', '"monitor": "val_acc"}')),
    # an import inside a function binds for the statements after it: `stopper` stops being a Lightning call
    (
        "import inside a function",
        lambda t: t.replace(
            "from lightning.pytorch.callbacks import ModelCheckpoint", "from mylib import ModelCheckpoint"
        ),
    ),
    (
        "import inside a function, back",
        lambda t: t.replace("from mylib import ModelCheckpoint", "from lightning.pytorch.callbacks import ModelCheckpoint"),
    ),
    # a module-level assignment carries to `trainer.fit(model)` two statements later
    ("assignment before fit", lambda t: t.replace("model = Net()", "model = Other()")),
    ("broken text", lambda t: replace_line(t, "def validation_step", "    def validation_step(self, batch")),
    ("fixed again", lambda t: replace_line(t, "def validation_step", "    def validation_step(self, batch, batch_idx):")),
    ("a line added (line count changes)", lambda t: t.replace("model = Other()", "model = Other()\nextra = 1")),
    ("a class renamed", lambda t: t.replace("class Other(", "class Renamed(")),
]


def test_cached_facts_equal_fresh_facts_after_every_edit():
    index, parses = WorkspaceIndex(), DocumentParses()
    text = SOURCE
    assert index.facts_for_text(PATH, text, parses) == fresh(text)
    for name, edit in EDITS:
        new = edit(text)
        assert new != text, f"edit {name!r} did not apply"
        text = new
        assert index.facts_for_text(PATH, text, parses) == fresh(text), name


def test_statements_an_edit_did_not_touch_are_not_visited_again():
    index, parses = WorkspaceIndex(), DocumentParses()
    index.facts_for_text(PATH, SOURCE, parses)
    cache = parses.facts_cache(PATH)
    before = cache.hits
    edited = SOURCE.replace('"train_loss", loss', '"train_los", loss')
    facts = index.facts_for_text(PATH, edited, parses)
    # every top-level statement except the edited class comes from the cache
    statements = len(__import__("ast").parse(edited).body)
    assert cache.hits - before == statements - 1
    assert [m.name for m in facts.logged][:1] == ["train_los"]


def test_assignment_change_reaches_fit_in_a_later_statement():
    parses = DocumentParses()
    index = WorkspaceIndex()
    assert [f.source for f in index.facts_for_text(PATH, SOURCE, parses).fits] == ["Net"]
    edited = SOURCE.replace("model = Net()", "model = Other()")
    assert [f.source for f in index.facts_for_text(PATH, edited, parses).fits] == ["Other"]


def test_fit_targets_from_the_cache_match_a_plain_walk():
    import ast

    cache = FactsCache()
    tree = ast.parse(SOURCE)
    plain = extract_facts(tree, SOURCE, PATH)
    assert extract_facts(tree, SOURCE, PATH, cache=cache).fits == plain.fits
    again = extract_facts(tree, SOURCE, PATH, cache=cache)  # every statement from the cache
    assert again.fits == plain.fits and [f.source for f in again.fits] == ["Net"]
    assert cache.hits == len(tree.body)


REPLACEMENTS = [
    "",
    "    pass",
    "x = 1",
    "        self.log('m', 1.0)",
    "import pytorch_lightning as L",
    "    from mylib import ModelCheckpoint",
    "model = Other()",
    "trainer.fit(Other())",
    "        return {'optimizer': o, 'lr_scheduler': {'scheduler': s, 'monitor': 'm'}}",
    "def broken(:",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(REPLACEMENTS), st.booleans()), min_size=1,
                max_size=6))
def test_random_edit_sequences_keep_cached_facts_exact(edits):
    index, parses = WorkspaceIndex(), DocumentParses()
    lines = SOURCE.split("\n")
    index.facts_for_text(PATH, SOURCE, parses)
    for where, new, insert in edits:
        at = where % len(lines)
        if insert:
            lines.insert(at, new)
        else:
            lines[at] = new
        text = "\n".join(lines)
        assert index.facts_for_text(PATH, text, parses) == fresh(text)


def test_server_reindexes_an_edited_document_incrementally():
    """The core's own re-index path (no event loop: schedule_index indexes at once) uses the cache."""
    server = create_server()
    uri = "file://" + PATH
    doc = server.documents.open(uri, SOURCE, 1, "utf-16")
    server.ensure_indexed(doc)
    path = server.path_of(uri)
    assert server.index.get(path) == fresh(SOURCE)
    line = next(i for i, text in enumerate(SOURCE.split("\n")) if '"train_loss"' in text)
    col = SOURCE.split("\n")[line].index("train_loss")
    change = types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=line, character=col),
                          end=types.Position(line=line, character=col + len("train_loss"))),
        text="train_total",
    )
    doc.apply_changes([change], 2)
    hits = server.parses.facts_cache(path).hits
    server.ensure_indexed(doc)
    assert server.index.get(path) == fresh(doc.text)
    assert server.parses.facts_cache(path).hits > hits
    assert "train_total" in {m.name for m in server.index.get(path).logged}


def test_importing_and_creating_the_server_leaves_pydantic_and_libcst_out():
    code = (
        "import sys\n"
        "from torchbolt_lsp.server import create_server\n"
        "server = create_server()\n"
        "assert not server.failed_features, server.failed_features\n"
        "print(sorted(m for m in ('pydantic', 'torchbolt.events', 'libcst', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.asyncio(loop_scope="module")
async def test_editing_and_linting_never_load_run_or_fix_modules(client, editor: Editor):
    """Through the real server: open, edit, complete, lint; pydantic and libcst stay unloaded."""
    uri, _ = editor.open("import lightning as L\ntrainer = L.Trainer(max_epoch=3)\n", "lazy_check.py")
    text = "import lightning as L\ntrainer = L.Trainer(max_epochs=3, acc)\n"
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    doc = types.TextDocumentIdentifier(uri=uri)
    result = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc, position=types.Position(line=1, character=text.index("acc)") - 19))
    )
    assert result is not None and any(item.label.startswith("accelerator") for item in result.items)
    report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(text_document=doc))
    assert report is not None
    await client.protocol.send_request_async("torchbolt/indexStatus", {})
    info = await client.protocol.send_request_async("torchbolt/debugModules", {})
    assert "pydantic" not in info.modules and "libcst" not in info.modules


def test_lines_inserted_above_move_cached_facts_instead_of_walking_again():
    """A line added at the top (a formatter, a paste) shifts every statement: their facts are reused,
    moved by one line, and still equal a fresh extraction."""
    import ast

    index, parses = WorkspaceIndex(), DocumentParses()
    index.facts_for_text(PATH, SOURCE, parses)
    cache = parses.facts_cache(PATH)
    before = cache.hits
    shifted = "# a comment added on top\n" + SOURCE
    facts = index.facts_for_text(PATH, shifted, parses)
    assert cache.hits - before == len(ast.parse(shifted).body)  # no statement visited again
    assert facts == fresh(shifted)
    assert facts.class_named("Net").span.line == fresh(SOURCE).class_named("Net").span.line + 1
    # the cache holds facts, not syntax trees (a big file's tree would stay alive with it)
    assert not any(isinstance(v, ast.AST) for entry in cache.statements.values() for v in vars(entry).values())


def test_code_lens_reads_the_indexed_facts_of_the_document_version(monkeypatch: pytest.MonkeyPatch):
    """Code lens targets come from the index's facts of the open document's current version: repeated
    requests extract nothing again, an edit costs one (incremental) extraction of the newest text."""
    import torchbolt_lsp.analysis.facts as facts_module
    import torchbolt_lsp.workspace_index as index_module

    calls: list[str] = []
    real = facts_module.extract_facts

    def counting(*args, **kwargs):
        calls.append(args[2] if len(args) > 2 else kwargs.get("path", ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(index_module, "extract_facts", counting)
    monkeypatch.setattr(facts_module, "extract_facts", counting)
    server = create_server()
    uri = "file://" + PATH
    doc = server.documents.open(uri, SOURCE, 1, "utf-16")
    manager = server.run_manager
    first = manager.file_targets(uri, doc.text)
    assert [t.name for t in first if t.kind == "module"] == ["Net", "Other"]
    assert [(t.kind, t.fn) for t in first if t.kind == "script"] == [("script", "fit")]
    assert len(calls) == 1 and server.index_runs[uri] == 1
    for _ in range(3):
        assert manager.file_targets(uri, doc.text) == first
        assert manager.file_targets(uri) == first
    assert len(calls) == 1 and server.index_runs[uri] == 1  # the same version: nothing extracted again
    for version in range(2, 12):  # a burst of whole-text changes, then one lens
        doc.apply_changes([types.TextDocumentContentChangeWholeDocument(text=f"# v{version}\n" + SOURCE)], version)
    moved = manager.file_targets(uri, doc.text)
    assert [(t.name, t.line) for t in moved] == [(t.name, t.line + 1) for t in first]
    assert len(calls) == 2 and server.index_runs[uri] == 2  # only the newest text
    assert server.indexed_version(uri) == 11
