"""`torchbolt check`: exit codes, output formats, --fix/--diff, noqa and pyproject configuration."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torchbolt_lsp.lint.cli import main

BAD = """
import lightning as L


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()


trainer = L.Trainer(gpus=2, max_epoch=3)
"""

CLEAN = """
import lightning as L
import torch


class Net(L.LightningModule):
    def training_step(self, batch, batch_idx):
        return self(batch).sum()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())
"""


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_exit_codes(tmp_path: Path):
    clean = write(tmp_path, "clean.py", CLEAN)
    bad = write(tmp_path, "bad.py", BAD)
    code, out, _ = run(str(clean))
    assert code == 0 and out == "All checks passed!\n"
    code, out, _ = run(str(bad))
    assert code == 1
    lines = out.splitlines()
    # [*] marks what plain --fix fixes: adding an optimizer and guessing `max_epochs` are unsafe fixes
    assert lines[0] == (f"{bad}:4:7: TB101 `Net` defines training_step but no configure_optimizers, so fit "
                        "fails before the first batch; add configure_optimizers returning an optimizer.")
    assert any(":9:21: TB502 [*] Trainer(`gpus=`)" in line for line in lines)
    assert lines[-1] == "Found 3 findings (1 fixable with --fix; 2 more with --fix --unsafe-fixes)."
    # usage errors: exit 2 with a message naming the problem
    code, _, err = run(str(tmp_path / "missing.py"))
    assert code == 2 and "missing.py: no such file or folder" in err
    code, _, err = run("--select", "XYZ1", str(bad))
    assert code == 2 and "'XYZ1' matches no torchbolt rule" in err
    assert run("--fix", "--diff", str(bad))[0] == 2
    assert run("--output-format", "xml", str(bad))[0] == 2


def test_directories_select_ignore(tmp_path: Path):
    write(tmp_path, "pkg/a.py", BAD)
    write(tmp_path, "pkg/.venv/lib/skipped.py", BAD)
    write(tmp_path, "pkg/sub/b.py", BAD)
    code, out, _ = run(str(tmp_path))
    assert code == 1 and out.count("TB101") == 2  # .venv skipped
    code, out, _ = run("--select", "TB5", str(tmp_path))
    assert "TB101" not in out and out.count("TB502") == 2 and out.count("TB501") == 2
    code, out, _ = run("--select", "TB5", "--ignore", "TB501,TB502", str(tmp_path))
    assert code == 0


def test_json_github_sarif(tmp_path: Path):
    bad = write(tmp_path, "bad.py", BAD)
    code, out, _ = run("--output-format", "json", str(bad))
    items = json.loads(out)
    assert code == 1 and [i["code"] for i in items] == ["TB101", "TB502", "TB501"]
    assert items[1]["location"] == {"row": 9, "column": 21}
    assert items[1]["fix"] == {"title": 'Replace with accelerator="gpu", devices=2', "kind": "replace_expr",
                               "applicability": "safe"}
    assert items[2]["fix"]["applicability"] == "unsafe"  # max_epoch -> max_epochs is a guess
    assert items[0]["severity"] == "error" and items[0]["name"] == "missing-configure-optimizers"
    code, out, _ = run("--output-format", "github", str(bad))
    first = out.splitlines()[0]
    assert first.startswith(f"::error file={bad},line=4,col=7,endLine=4,endColumn=10,title=TB101::TB101 ")
    code, out, _ = run("--output-format", "sarif", str(bad))
    sarif = json.loads(out)
    run0 = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    rule_ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    result = run0["results"][0]
    assert rule_ids[result["ruleIndex"]] == result["ruleId"] == "TB101"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 4


def test_fix_and_diff(tmp_path: Path):
    bad = write(tmp_path, "bad.py", BAD)
    original = bad.read_text()
    code, out, err = run("--diff", str(bad))
    assert code == 1 and "1 file would be changed" in err
    assert "\n-trainer = L.Trainer(gpus=2, max_epoch=3)\n" in out
    assert '\n+trainer = L.Trainer(accelerator="gpu", devices=2, max_epoch=3)\n' in out  # safe fixes only
    assert out.startswith(f"--- a/{bad}\n+++ b/{bad}\n")
    assert bad.read_text() == original  # --diff never writes
    code, out, _ = run("--diff", "--unsafe-fixes", str(bad))
    assert '\n+trainer = L.Trainer(accelerator="gpu", devices=2, max_epochs=3)\n' in out
    assert bad.read_text() == original
    code, out, _ = run("--fix", "--unsafe-fixes", str(bad))
    assert code == 0 and "Fixed 3 findings." in out and out.endswith("All checks passed!\n")
    fixed = bad.read_text()
    assert "def configure_optimizers(self):" in fixed and "import torch" in fixed
    assert run(str(bad))[0] == 0
    assert run("--diff", str(bad))[:2] == (0, "")


def test_noqa(tmp_path: Path):
    src = BAD.replace("class Net(L.LightningModule):", "class Net(L.LightningModule):  # noqa: TB101")
    src = src.replace("max_epoch=3)", "max_epoch=3)  # noqa")
    path = write(tmp_path, "n.py", src)
    assert run(str(path))[0] == 0
    # a noqa for another code does not silence
    path.write_text(textwrap.dedent(BAD).replace("gpus=2, max_epoch=3)", "gpus=2, max_epoch=3)  # noqa: TB101"))
    code, out, _ = run(str(path))
    assert code == 1 and "TB502" in out
    # "noqa" inside a string is not a comment
    path.write_text(textwrap.dedent(BAD).replace("gpus=2, max_epoch=3)", "gpus=2, max_epoch=3, name='# noqa')"))
    assert "TB502" in run(str(path))[1]


def test_pyproject_configuration(tmp_path: Path):
    write(tmp_path, "pyproject.toml", """
        [tool.torchbolt.lint]
        select = ["TB1", "TB5"]
        ignore = ["TB501"]

        [tool.torchbolt.lint.per-file-ignores]
        "scripts/*.py" = ["TB5"]
    """)
    write(tmp_path, "src/model.py", BAD)
    write(tmp_path, "scripts/run.py", BAD)
    code, out, _ = run(str(tmp_path))
    assert code == 1
    assert "src/model.py:4:7: TB101" in out and "src/model.py:9:21: TB502" in out
    assert "TB501" not in out  # ignored everywhere
    assert "scripts/run.py:9" not in out and "scripts/run.py:4:7: TB101" in out  # TB5 ignored in scripts/
    # the command line extends the configuration
    code, out, _ = run("--ignore", "TB1", str(tmp_path))
    assert "TB101" not in out and "TB502" in out
    write(tmp_path, "pyproject.toml", "[tool.torchbolt.lint]\nselekt = ['TB1']\n")
    code, _, err = run(str(tmp_path))
    assert code == 2 and "unknown setting(s) selekt" in err


def test_syntax_error_is_a_finding(tmp_path: Path):
    path = write(tmp_path, "broken.py", "def f(:\n    pass\n")
    code, out, _ = run(str(path))
    assert code == 1 and "TB001" in out and "Syntax error" in out


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "torchbolt_lsp.lint"],
    [sys.executable, "-c", "import sys; from torchbolt.cli import main; sys.exit(main())", "check"],
])
def test_entry_points_never_import_torch(tmp_path: Path, command: list[str]):
    bad = write(tmp_path, "bad.py", BAD)
    proc = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "TB101" in proc.stdout
    check = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom torchbolt_lsp.lint.cli import main\nmain(sys.argv[1:])\n"
         "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'torch was imported'\n",
         str(bad)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr


def test_pre_commit_hooks_declared():
    import yaml

    hooks = yaml.safe_load((Path(__file__).parents[2] / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"torchbolt-check", "torchbolt-check-system"}
    for hook in hooks:
        assert hook["entry"] == "torchbolt check" and hook["types"] == ["python"] and hook["require_serial"]
    assert by_id["torchbolt-check"]["language"] == "python"
