"""Golden-file tests: every rule has a case file (true positives and near-miss negatives) with its
expected findings, and every fix kind an input file with the expected output after the fix.

`cases/<CODE>.py` is linted with only that code selected; the findings must equal `cases/<CODE>.txt`
(`line:col CODE message`, 1-based columns). `fixes/<CODE>_<what>.in.py` is fixed with every fix of
that code ("fix all of this kind"); the result must equal `<...>.out.py`, parse, and leave no finding
of that code that has a fix. Set TORCHBOLT_UPDATE_GOLDEN=1 to rewrite the expected files after a
deliberate change (then review the diff).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from torchbolt_lsp.lint import RULES, LintConfig, Project, lint_source, rule_table
from torchbolt_lsp.lint.fixes import apply_edits as apply_lint_edits
from torchbolt_lsp.lint.fixes import edits_between, fix_all

HERE = Path(__file__).parent
CASES = sorted((HERE / "cases").glob("TB*.py"))
FIXES = sorted((HERE / "fixes").glob("*.in.py"))
UPDATE = os.environ.get("TORCHBOLT_UPDATE_GOLDEN") == "1"


def render(findings) -> str:
    return "".join(f"{f.line}:{f.col + 1} {f.code} {f.message}\n" for f in findings)


def test_every_rule_has_a_case_file():
    rule_table()
    missing = [code for code in RULES if code != "TB001" and not (HERE / "cases" / f"{code}.py").exists()]
    assert missing == []


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case: Path):
    code = case.stem
    source = case.read_text()
    result = lint_source(source, str(case), Project(), LintConfig(select=(code,)))
    assert result.errors == []
    findings = result.findings
    expected_file = case.with_suffix(".txt")
    if UPDATE:
        expected_file.write_text(render(findings))
    assert render(findings) == expected_file.read_text()
    # the file holds true positives (marked "# positive") and near misses; every positive line is found
    positives = [i + 1 for i, line in enumerate(source.splitlines()) if "# positive" in line]
    assert positives, f"{case.name} has no true positive"
    assert any("near miss" in line for line in source.splitlines()), f"{case.name} has no near-miss negative"
    found_lines = {f.line for f in findings} | {f.end_line for f in findings}
    for line in positives:
        # a finding on the marked line, or on the def/class line it annotates
        assert line in found_lines or line + 1 in found_lines or any(
            f.line <= line <= f.end_line for f in findings), f"{case.name}:{line} positive not found"


@pytest.mark.parametrize("path", FIXES, ids=[p.name.removesuffix(".in.py") for p in FIXES])
def test_fix(path: Path):
    code = path.name.split("_")[0]
    source = path.read_text()
    config = LintConfig(select=("TB",))

    def lint(text: str):
        return lint_source(text, str(path), Project(), config).findings

    before = [f for f in lint(source) if f.code == code and f.fixes]
    assert before, f"{path.name} has nothing to fix for {code}"
    fixed = fix_all(source, lint, want=lambda f: f.code == code, unsafe=True)  # safe and unsafe alike
    out = path.with_name(path.name.replace(".in.py", ".out.py"))
    if UPDATE:
        out.write_text(fixed)
    assert fixed == out.read_text()
    ast.parse(fixed)
    assert [f for f in lint(fixed) if f.code == code and f.fixes] == []
    # the minimal edits reproduce the same output (what an editor applies)
    assert apply_lint_edits(source, edits_between(source, fixed)) == fixed
