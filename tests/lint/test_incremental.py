"""The server's incremental path (re-parse and re-walk only touched top-level statements) must give
exactly what a full parse and walk give, for any edit."""

from __future__ import annotations

import ast
from pathlib import Path

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
                "", " ", "16", "'16-mixed'", "trainer.fit(model)", "def ", ":"]


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
