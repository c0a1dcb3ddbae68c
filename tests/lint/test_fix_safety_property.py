"""Exhaustive property test of every fix on every file of the lint test corpus.

For each finding's every fix (safe and unsafe), applied alone, and for "fix everything" in both modes:
the result compiles, and re-linting it gives no finding of the fix's own making, i.e. no new finding
that touches text the fix wrote. (A fix may *reveal* a true finding elsewhere: renaming `training_stpe`
makes the class's missing `configure_optimizers` matter; that one is not on the fixed text.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from torchbolt_lsp.lint import LintConfig, Project, lint_source
from torchbolt_lsp.lint.fixes import apply_fixes, edits_between, fix_all
from torchbolt_lsp.lint.model import Finding

ROOT = Path(__file__).parent
FILES = sorted(p for folder in ("cases", "corpus", "fixes", "fix_safety") for p in (ROOT / folder).rglob("*.py"))
CONFIG = LintConfig(select=("TB",))


def lint(text: str, path: str) -> list[Finding]:
    return lint_source(text, path, Project(), CONFIG).findings


def made_by_fix(old: str, new: str, path: str, before: list[Finding]) -> list[Finding]:
    """New findings of `new` (by code and message) that overlap the text the fix wrote."""
    after = lint(new, path)
    extra = Counter((f.code, f.message) for f in after) - Counter((f.code, f.message) for f in before)
    if not extra:
        return []
    written = [((e.line, e.col), (e.end_line, e.end_col)) for e in edits_between(new, old)]  # spans in `new`
    return [f for f in after if (f.code, f.message) in extra and any(
        (f.line, f.col) <= end and start <= (f.end_line, f.end_col) for start, end in written)]


def _cases() -> list[tuple[str, int]]:
    out = []
    for path in FILES:
        n = sum(len(f.fixes) for f in lint(path.read_text(), str(path)))
        out.extend((str(path.relative_to(ROOT)), i) for i in range(n))
    return out


CASES = _cases()


def test_the_corpus_exercises_every_fix_kind():
    kinds = {fix.kind for p in FILES for f in lint(p.read_text(), str(p)) for fix in f.fixes}
    assert {"rename_def", "remove_param", "migrate_epoch_end", "add_configure_optimizers", "replace_expr",
            "replace_string", "drop_keyword", "move_to_fit", "drop_method_call", "remove_statement"} <= kinds
    assert len(CASES) > 100


@pytest.mark.parametrize("rel", sorted({rel for rel, _ in CASES}))
def test_every_single_fix_compiles_and_makes_no_finding(rel: str):
    path = ROOT / rel
    source = path.read_text()
    before = lint(source, str(path))
    for finding in before:
        for fix in finding.fixes:
            new = apply_fixes(source, [(finding, fix)])
            assert new != source, f"{rel}:{finding.line} {fix.kind} changed nothing"
            compile(new, rel, "exec")
            made = made_by_fix(source, new, str(path), before)
            assert made == [], f"{rel}:{finding.line} {finding.code} {fix.kind} made {made}"


@pytest.mark.parametrize("unsafe", [False, True], ids=["safe", "unsafe"])
def test_fixing_everything_compiles_and_makes_no_finding(unsafe: bool):
    for path in FILES:
        source = path.read_text()
        before = lint(source, str(path))
        new = fix_all(source, lambda text, p=str(path): lint(text, p), unsafe=unsafe)
        compile(new, str(path), "exec")
        assert made_by_fix(source, new, str(path), before) == [], path
        if not unsafe:
            assert all(not any(x.safe for x in f.fixes) for f in lint(new, str(path))), f"{path}: safe fixes left"
