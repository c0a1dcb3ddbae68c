"""Fixes that never change behaviour: golden files for each rewrite that used to change what code does.

`fix_safety/safe_<what>.in.py` is fixed the way `torchbolt check --fix` does (safe fixes only),
`fix_safety/unsafe_<what>.in.py` the way `--fix --unsafe-fixes` does; the result must equal `.out.py`,
compile, and re-lint without findings the fixes made. Each file is also fixed with CRLF line endings,
which must come back as CRLF. Set TORCHBOLT_UPDATE_GOLDEN=1 to rewrite the expected files.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from pathlib import Path

import pytest
from torchbolt_lsp.lint import LintConfig, Project, lint_source
from torchbolt_lsp.lint.cli import main
from torchbolt_lsp.lint.fixes import apply_edits, edits_between, fix_all

HERE = Path(__file__).parent / "fix_safety"
CASES = sorted(HERE.glob("*.in.py"))
UPDATE = os.environ.get("TORCHBOLT_UPDATE_GOLDEN") == "1"
CONFIG = LintConfig(select=("TB",))


def lint(text: str, path: str = "case.py"):
    return lint_source(text, path, Project(), CONFIG).findings


def new_findings(before: str, after: str) -> list[tuple[str, str]]:
    """Findings in `after` that `before` did not have (compared by code and message, not position)."""
    made = Counter((f.code, f.message) for f in lint(after)) - Counter((f.code, f.message) for f in lint(before))
    return sorted(made)


def fixed(source: str, unsafe: bool) -> str:
    return fix_all(source, lint, unsafe=unsafe)


@pytest.mark.parametrize("path", CASES, ids=[p.name.removesuffix(".in.py") for p in CASES])
def test_golden(path: Path):
    source = path.read_text()
    unsafe = path.name.startswith("unsafe_")
    result = fixed(source, unsafe)
    out = path.with_name(path.name.replace(".in.py", ".out.py"))
    if UPDATE:
        out.write_text(result)
    assert result == out.read_text()
    compile(result, str(out), "exec")
    assert new_findings(source, result) == []
    assert apply_edits(source, edits_between(source, result)) == result
    # the same file with Windows line endings is fixed the same way and keeps them
    crlf = source.replace("\n", "\r\n")
    assert fixed(crlf, unsafe) == result.replace("\n", "\r\n")


def test_safe_mode_leaves_unsafe_rewrites_alone():
    for name in ("unsafe_epoch_end_keeps_outputs", "unsafe_gpus_values", "unsafe_hook_renames"):
        source = (HERE / f"{name}.in.py").read_text()
        assert fixed(source, unsafe=False) == source, name


def test_run_time_gpus_values_are_unsafe():
    findings = lint((HERE / "unsafe_gpus_values.in.py").read_text())
    assert [(f.line, [x.safe for x in f.fixes]) for f in findings if f.code == "TB502"] == [
        (6, [False]), (7, [False]), (8, [False])]


def test_rename_onto_a_hook_with_other_arguments_is_not_offered():
    findings = {f.message.split("`")[1]: f for f in lint((HERE / "unsafe_hook_renames.in.py").read_text())
                if f.code == "TB103"}
    # Lightning calls on_validation_end(self): a renamed validation_end(self, outputs) would raise TypeError
    assert findings["validation_end"].fixes == ()
    assert [(x.title, x.safe) for x in findings["training_stpe"].fixes] == [("Rename to training_step", False)]


def test_registered_strategy_names_are_valid():
    findings = lint((HERE / "unsafe_strategies.in.py").read_text())
    assert [(f.code, f.line) for f in findings if f.code.startswith("TB50")] == [("TB504", 16)]


def test_asserted_errors_are_reported_without_fixes():
    findings = lint((HERE / "unsafe_pytest_raises.in.py").read_text())
    inside = [f for f in findings if f.line < 15]
    assert sorted(f.code for f in inside) == ["TB502", "TB505"]  # still reported (a project may ignore them)
    assert all(f.fixes == () for f in inside)
    assert all(f.fixes for f in findings if f.line >= 15)


def test_cli_keeps_crlf_bom_and_coding_cookie(tmp_path: Path):
    body = "import lightning as L\n\ntrainer = L.Trainer(gpus=None, max_epochs=1)  # café\n"
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(body.replace("\n", "\r\n").encode())
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + body.encode())
    latin = tmp_path / "latin.py"
    latin.write_bytes(("# -*- coding: latin-1 -*-\n" + body).encode("latin-1"))
    out = io.StringIO()
    assert main(["--fix", str(crlf), str(bom), str(latin)], stdout=out, stderr=io.StringIO()) == 0
    assert "Fixed 3 findings." in out.getvalue()
    fixed_body = body.replace("gpus=None", 'accelerator="cpu"')
    assert crlf.read_bytes() == fixed_body.replace("\n", "\r\n").encode()
    assert bom.read_bytes() == b"\xef\xbb\xbf" + fixed_body.encode()
    assert latin.read_bytes() == ("# -*- coding: latin-1 -*-\n" + fixed_body).encode("latin-1")


def test_fixed_count_is_what_was_applied(tmp_path: Path):
    # two findings, one safe fix: plain --fix applies (and counts) one
    path = tmp_path / "m.py"
    path.write_text("import lightning as L\n\ntrainer = L.Trainer(gpus=2, max_epoch=3)\n")
    out = io.StringIO()
    assert main(["--fix", str(path)], stdout=out, stderr=io.StringIO()) == 1
    assert "Fixed 1 finding." in out.getvalue()
    assert "Found 1 finding (1 more with --fix --unsafe-fixes)." in out.getvalue()
