"""Unit tests of the pure pieces: rule registry, selection, noqa, positions, minimal edits, fixes."""

from __future__ import annotations

import textwrap

import pytest
from torchbolt_lsp.features.diagnostics import Positions
from torchbolt_lsp.lint import FAMILIES, RULES, ConfigError, LintConfig, Project, lint_source, rule_table
from torchbolt_lsp.lint.config import from_table
from torchbolt_lsp.lint.engine import noqa_lines
from torchbolt_lsp.lint.fixes import TextEdit, apply_edits, apply_fixes, edits_between, fix_edits


def lint(src: str, **cfg):
    return lint_source(textwrap.dedent(src).lstrip("\n"), "x.py", Project(), LintConfig(**cfg)).findings


def test_registry_is_complete_and_documented():
    rules = rule_table()
    assert len(rules) >= 20
    for rule in rules:
        assert rule.code[:3] in FAMILIES, rule.code
        assert rule.summary.endswith(".") and rule.name == rule.name.lower()
    assert len({r.name for r in rules}) == len(rules)
    assert {r.code for r in rules if r.fixable} >= {"TB101", "TB103", "TB105", "TB201", "TB301", "TB404", "TB501",
                                                    "TB502", "TB503", "TB504", "TB505"}


@pytest.mark.parametrize(("select", "ignore", "code", "on"), [
    (("TB",), (), "TB101", True),
    (("TB1",), (), "TB201", False),
    (("TB1",), ("TB103",), "TB103", False),
    (("TB1",), ("TB103",), "TB101", True),
    (("TB101",), ("TB1",), "TB101", True),  # the more specific entry wins
    (("TB1",), ("TB1",), "TB101", False),  # a tie: ignore wins
])
def test_selection_by_prefix(select, ignore, code, on):
    assert LintConfig(select=select, ignore=ignore).enabled(code) is on


def test_per_file_ignores_and_bad_settings(tmp_path):
    cfg = from_table({"per-file-ignores": {"tests/*.py": ["TB2"], "conftest.py": ["TB1"]}}, tmp_path)
    assert not cfg.enabled("TB201", str(tmp_path / "tests" / "t.py"))
    assert cfg.enabled("TB201", str(tmp_path / "src" / "t.py"))
    assert not cfg.enabled("TB101", str(tmp_path / "deep" / "conftest.py"))  # a bare name matches anywhere
    with pytest.raises(ConfigError, match="select must be a list"):
        from_table({"select": "TB1"}, tmp_path)
    with pytest.raises(ConfigError, match="matches no torchbolt rule"):
        LintConfig().merged(ignore=["E501"])


def test_noqa_comments_only():
    src = 'x = 1  # noqa\ny = "# noqa: TB101"\nz = 2  # NOQA: TB101, tb502\n'
    marks = noqa_lines(src)
    assert marks == {1: None, 3: frozenset({"TB101", "TB502"})}


def test_non_ascii_columns_are_characters_and_utf16_units():
    src = '''
        import lightning as L


        class Net(L.LightningModule):
            def training_step(self, batch, batch_idx):
                x = "héllo😀"; y = batch.cuda()
                return y.sum()

            def configure_optimizers(self):
                return None
    '''
    (finding,) = lint(src)
    text = textwrap.dedent(src).lstrip("\n")
    line = text.splitlines()[finding.line - 1]
    assert line[finding.col:finding.end_col] == "batch.cuda()"  # str indices, not UTF-8 bytes
    pos = Positions(text, "utf-16").position(finding.line, finding.col)
    assert pos.character == finding.col + 1  # the emoji is two UTF-16 units
    assert Positions(text, "utf-32").position(finding.line, finding.col).character == finding.col
    assert Positions(text, "utf-16").char_col(finding.line - 1, pos.character) == finding.col


def test_edits_between_is_minimal():
    old = "a = 1\nb = Trainer(gpus=2)\nc = 3\n"
    new = "a = 1\nb = Trainer(devices=2)\nc = 3\n"
    assert edits_between(old, new) == [TextEdit(2, 12, 2, 15, "device")]  # gpu(s) -> device(s)
    assert apply_edits(old, edits_between(old, new)) == new
    assert edits_between(old, old) == []
    grown = old + "d = 4\n"
    assert apply_edits(old, edits_between(old, grown)) == grown


def test_switch_to_manual_optimization_fix():
    src = textwrap.dedent('''
        import lightning as L
        import torch


        class Net(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(2, 1)

            def training_step(self, batch, batch_idx):
                opt = self.optimizers()
                opt.zero_grad()
                loss = self.layer(batch).sum()
                loss.backward(retain_graph=True)  # keep the graph
                opt.step()

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)
    ''').lstrip("\n")
    findings = lint_source(src, "x.py", Project(), LintConfig(select=("TB301",))).findings
    backward = next(f for f in findings if "backward" in f.message)
    manual = next(fx for fx in backward.fixes if fx.kind == "to_manual_optimization")
    out = apply_edits(src, fix_edits(src, backward, manual))
    assert "        self.automatic_optimization = False\n" in out
    assert "self.manual_backward(loss, retain_graph=True)  # keep the graph" in out
    after = lint_source(out, "x.py", Project(), LintConfig())
    assert [f.code for f in after.findings] == []  # manual optimization now: nothing left to report


def test_fixes_in_several_classes_of_one_file_apply_together():
    src = textwrap.dedent('''
        import lightning as L


        class A(L.LightningModule):
            def training_stpe(self, batch, batch_idx):
                return batch


        class B(L.LightningModule):
            def validation_stpe(self, batch, batch_idx):
                return batch
    ''').lstrip("\n")
    findings = [f for f in lint_source(src, "x.py").findings if f.code == "TB103"]
    out = apply_fixes(src, [(f, f.fixes[0]) for f in findings])
    assert "def training_step(" in out and "def validation_step(" in out


def test_every_rule_declares_a_distinct_code():
    assert all(code == rule.code for code, rule in RULES.items())


def test_readme_documents_every_rule():
    from pathlib import Path

    import torchbolt_lsp.lint as lint_pkg

    readme = (Path(lint_pkg.__file__).parent / "README.md").read_text()
    for rule in rule_table():
        assert f"| `{rule.code}` | {rule.name} |" in readme, rule.code
    for family in FAMILIES:
        assert f"`{family}xx`" in readme


def test_a_crashing_checker_is_isolated(monkeypatch):
    from torchbolt_lsp.lint import engine

    def broken(ctx):
        raise RuntimeError("boom")

    rule = RULES["TB101"]
    monkeypatch.setattr(engine, "CHECKERS", [((rule,), broken), *engine.CHECKERS])
    result = lint_source("import lightning as L\nt = L.Trainer(gpus=1)\n", "x.py")
    assert result.errors == ["broken: RuntimeError: boom"]
    assert [f.code for f in result.findings] == ["TB502"]  # the other checkers still ran


def test_fix_all_skips_a_fix_that_cannot_apply_and_does_the_rest():
    src = textwrap.dedent('''
        import lightning as L
        import torch


        class Net(L.LightningModule):
            def training_step(self, batch, batch_idx):
                loss = self(batch).sum()
                ok = loss.backward()  # not a statement of its own: no removal fix applies
                return loss

            def configure_optimizers(self):
                return torch.optim.Adam(self.parameters())


        t = L.Trainer(gpus=1, precision=16)
    ''').lstrip("\\n")
    from torchbolt_lsp.lint.fixes import fix_all

    out = fix_all(src, lambda s: lint_source(s, "x.py").findings)
    assert 't = L.Trainer(accelerator="gpu", devices=1, precision="16-mixed")' in out
    assert "ok = loss.backward()" in out
