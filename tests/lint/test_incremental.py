"""The server's incremental path (re-parse and re-walk only touched top-level statements) must give
exactly what a full parse and walk give, for any edit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torchbolt_lsp.lint import lint_source
from torchbolt_lsp.lint.incremental import IncrementalParser

BASE = (Path(__file__).parent / "corpus" / "m21_script.py").read_text() + "\n" + \
    (Path(__file__).parent / "cases" / "TB201.py").read_text() + "\n" + \
    (Path(__file__).parent / "cases" / "TB502.py").read_text()
LINES = BASE.split("\n")

#: Small edits a user makes: retype a keyword, break/fix a line, rename, add a call, change a literal.
REPLACEMENTS = ["max_epochs", "max_epoch", "gpus", "devices", ".cuda()", "(", ")", "cuda", "self.log('x', 1)",
                "", " ", "16", "'16-mixed'", "trainer.fit(model)", "def ", ":", "# ", "#"]


def _dump(tree: ast.AST) -> str:
    return ast.dump(tree, include_attributes=True)


def _key(findings):
    return [(f.code, f.line, f.col, f.end_line, f.end_col, f.message) for f in findings]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(LINES) - 1), st.integers(0, 200), st.sampled_from(REPLACEMENTS)),
                min_size=1, max_size=6))
def test_incremental_equals_full(edits):
    parser = IncrementalParser()
    cache: dict = {}
    lines = list(LINES)
    parser.parse("f.py", "\n".join(lines))
    for line, col, text in edits:
        old = lines[line]
        col = min(col, len(old))
        lines[line] = old[:col] + text + old[col + len(text) // 2:]
        source = "\n".join(lines)
        try:
            full = ast.parse(source)
        except SyntaxError:
            full = None
        try:
            incremental = parser.parse("f.py", source)
        except SyntaxError:
            incremental = None
        assert (full is None) == (incremental is None)
        if full is None:
            parser.forget("f.py")
            continue
        assert _dump(incremental) == _dump(full)
        fast = lint_source(source, "f.py", parser=parser.parse, scan_cache=cache)
        slow = lint_source(source, "f.py")
        assert _key(fast.findings) == _key(slow.findings)
        assert fast.facts == slow.facts


def test_a_typed_character_reuses_the_rest():
    parser = IncrementalParser()
    source = BASE
    parser.parse("f.py", source)
    target = next(i for i, ln in enumerate(LINES) if "gpus=2" in ln)
    lines = list(LINES)
    lines[target] = lines[target].replace("gpus=2", "gpus=4")
    tree = parser.parse("f.py", "\n".join(lines))
    assert parser.reused == 1
    assert _dump(tree) == _dump(ast.parse("\n".join(lines)))


def test_an_edit_of_a_comment_between_statements_keeps_the_whole_tree():
    """A header comment rewritten (a formatter, a licence year), a blank line given spaces: no parse at all;
    a comment turned into code is parsed in full."""
    parser = IncrementalParser()
    source = "# header v1\nimport torch\n\n\nclass M:\n    x = 1\n"
    first = parser.parse("f.py", source)
    tree = parser.parse("f.py", source.replace("# header v1", "# header v2").replace("\n\n\n", "\n   \n\n"))
    assert tree is first and parser.reused == 1
    code = parser.parse("f.py", source.replace("# header v1", "y = 2      "))
    assert parser.reused == 1 and _dump(code) == _dump(ast.parse(source.replace("# header v1", "y = 2      ")))


def test_the_worker_is_sent_each_files_facts_once(tmp_path: Path):
    """Unchanged facts travel to the lint worker by key only; a worker that lacks them says so."""
    from torchbolt_lsp.lint import LintConfig, Project, file_facts_of
    from torchbolt_lsp.lint.worker import StaleFacts, facts_key, lint_job

    base = tmp_path / "base.py"
    base.write_text("import lightning as L\n\n\nclass Base(L.LightningModule):\n"
                    "    def configure_optimizers(self):\n        return None\n")
    facts = file_facts_of(base.read_text(), str(base), Project([str(tmp_path)]))
    assert facts is not None
    child = "from base import Base\n\n\nclass Child(Base):\n    def training_step(self, batch, i):\n        return 1\n"
    path = str(tmp_path / "child.py")
    first = lint_job(child, path, {str(base): facts}, LintConfig(), (str(tmp_path),))
    again = lint_job(child, path, {str(base): facts_key(facts)}, LintConfig(), (str(tmp_path),))
    assert first == again == (True, [])  # configure_optimizers comes from Base in both
    with pytest.raises(StaleFacts):
        lint_job(child, path, {str(tmp_path / "other.py"): (1, "other")}, LintConfig(), (str(tmp_path),))
