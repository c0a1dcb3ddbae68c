"""Robustness of `torchbolt check`: one bad file never ends the run, and exit codes never lie.

0 clean, 1 findings, 2 usage/unreadable/internal error (a crash is never read as "findings").
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from torchbolt_lsp.lint import cli, fixes
from torchbolt_lsp.lint.cli import main

FINDING = "import lightning as L\n\ntrainer = L.Trainer(gpus=2)\n"
CLEAN = "import lightning as L\n\ntrainer = L.Trainer(max_epochs=1)\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_undecodable_and_unreadable_files_are_reported_and_the_rest_checked(tmp_path: Path):
    (tmp_path / "a_latin.py").write_bytes("# caf\xe9\nx = 1\n".encode("latin-1"))  # no coding cookie
    (tmp_path / "b_gone.py").symlink_to(tmp_path / "missing-target.py")  # listed, but cannot be read
    (tmp_path / "c_bad_cookie.py").write_bytes(b"# -*- coding: no-such-codec -*-\nx = 1\n")
    (tmp_path / "d_ok.py").write_text(FINDING)
    code, out, err = run(str(tmp_path))
    assert code == 2  # something could not be checked: not "findings"
    assert "d_ok.py:3:21: TB502" in out  # the readable file was still checked
    assert "a_latin.py: cannot decode as utf-8 (invalid continuation byte at byte 5)" in err
    assert "declare its encoding" in err
    assert "b_gone.py: cannot read it (No such file or directory)" in err
    assert "c_bad_cookie.py: unknown encoding: no-such-codec" in err


def test_coding_cookie_and_bom_are_honoured(tmp_path: Path):
    latin = tmp_path / "latin.py"
    latin.write_bytes(("# -*- coding: latin-1 -*-\n# caf\xe9\n" + CLEAN).encode("latin-1"))
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + CLEAN.encode())
    assert run(str(latin), str(bom))[:2] == (0, "All checks passed!\n")


@pytest.mark.parametrize("code", ["x = " + "+".join(["1"] * 100_000) + "\n",  # RecursionError in ast.parse
                                  "x = " + "(" * 300 + "1" + ")" * 300 + "\n",  # too many nested parentheses
                                  "x = 1\0\n"])  # a NUL byte: ValueError/SyntaxError
def test_code_python_cannot_compile_is_a_per_file_finding(tmp_path: Path, code: str):
    (tmp_path / "deep.py").write_text(code)
    (tmp_path / "ok.py").write_text(FINDING)
    status, out, err = run(str(tmp_path))
    assert status == 1 and err == ""
    assert "deep.py:1:" in out and "TB001" in out and "ok.py:3:21: TB502" in out


def test_fix_skips_statements_too_deep_for_libcst(tmp_path: Path):
    deep = "+".join(["1"] * 2000)  # ast parses it; libcst would take seconds (or overflow its native stack)
    path = tmp_path / "m.py"
    path.write_text("import lightning as L\nimport torch\n\n\nclass Net(L.LightningModule):\n"
                    "    def training_step(self, batch, batch_idx, optimizer_idx):\n"
                    f"        return {deep}\n\n    def configure_optimizers(self):\n"
                    "        return torch.optim.SGD(self.parameters(), lr=0.1)\n\n\n"
                    "def fixable():\n    return L.Trainer(gpus=2)\n")
    status, out, _ = run("--fix", str(path))
    assert status == 1 and "Fixed 1 finding." in out  # the Trainer call; the deep class keeps its text
    assert "TB106" in out and 'L.Trainer(accelerator="gpu", devices=2)' in path.read_text()


def test_a_libcst_crash_leaves_that_statement_unfixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "m.py"
    path.write_text("import lightning as L\nimport torch\n\n\nclass Net(L.LightningModule):\n"
                    "    def training_step(self, batch, batch_idx, optimizer_idx):\n        return batch.sum()\n\n"
                    "    def configure_optimizers(self):\n        return torch.optim.SGD(self.parameters(), lr=0.1)\n"
                    "\n\ntrainer = L.Trainer(gpus=2)\n")

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("libcst blew up")

    monkeypatch.setattr(fixes, "_transform", broken)
    status, out, err = run("--fix", str(path))
    assert status == 1 and "Fixed 1 finding." in out and "TB106" in out
    assert 'L.Trainer(accelerator="gpu", devices=2)' in path.read_text()


def test_internal_errors_exit_2_never_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "m.py").write_text(FINDING)

    def crash(*args: object, **kwargs: object) -> object:
        raise KeyError("bug")

    monkeypatch.setattr(cli, "check_paths", crash)
    status, out, err = run(str(tmp_path))
    assert status == 2 and out == ""
    assert err == "torchbolt check: internal error: KeyError: 'bug' (please report it)\n"


def test_exit_codes_from_the_command_line(tmp_path: Path):
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "finding.py").write_text(FINDING)
    (tmp_path / "binary.py").write_bytes(b"\xff\xfe\x00garbage")

    def status(*args: str) -> int:
        return subprocess.run([sys.executable, "-m", "torchbolt_lsp.lint", *args], capture_output=True).returncode

    assert status(str(tmp_path / "clean.py")) == 0
    assert status(str(tmp_path / "finding.py")) == 1
    assert status(str(tmp_path / "binary.py")) == 2
    assert status("--no-such-flag") == 2
