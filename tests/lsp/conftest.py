"""pytest-lsp fixtures: the real server process under the VS Code and Neovim 0.11 capability profiles."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsp_support import Editor
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

PROFILES = ["visual-studio-code", "neovim@v0.11"]
CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "torchbolt_lsp"])

#: Files of the shared test workspace (a package with cross-file inheritance, a training script).
WORKSPACE: dict[str, str] = {
    "pkg/__init__.py": "from .base import BaseModule\n",
    "pkg/base.py": '''
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import Callback


        class BaseModule(pl.LightningModule):
            def training_step(self, batch, batch_idx):
                loss = self(batch)
                self.log("train_loss", loss, on_epoch=True)
                return loss


        class BaseCallback(Callback):
            pass
    ''',
    "pkg/models.py": '''
        from pkg.base import BaseModule


        class Classifier(BaseModule):
            def validation_step(self, batch, batch_idx):
                self.log("val_loss", 0.5)
                self.log_dict({"val_acc": 1.0, "val_f1": 0.9})
    ''',
    "pkg/reexport_user.py": '''
        from pkg import BaseModule


        class Reexported(BaseModule):
            pass
    ''',
    "scripts/helpers.py": '''
        import pytorch_lightning as ptl


        class ScriptBase(ptl.LightningDataModule):
            pass
    ''',
    "scripts/train.py": '''
        from helpers import ScriptBase
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint, EarlyStopping

        trainer = L.Trainer(max_epochs=3, callbacks=[ModelCheckpoint(monitor="val_loss")])
        stopper = EarlyStopping(monitor="train_loss_epoch")
    ''',
    ".venv/lib/ignored.py": "class Ignored:\n    pass\n",
}


def write_workspace(root: Path, files: dict[str, str]) -> Path:
    """Create the files (dedented) under root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    (root / ".venv" / "pyvenv.cfg").write_text("home = /usr\n")
    return root


@pytest_lsp.fixture(config=CONFIG, params=PROFILES, scope="module")
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient):
    """A running server, initialized with the module's client profile on a fresh copy of WORKSPACE."""
    root = write_workspace(request.getfixturevalue("tmp_path_factory").mktemp("ws"),
                           getattr(request.module, "WORKSPACE", WORKSPACE))
    lsp_client.workspace_root = root  # type: ignore[attr-defined]
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(request.param),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
        initialization_options={"trusted": False, "settings": {}},
    ))
    await lsp_client.protocol.send_request_async("torchbolt/indexStatus", {})
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def editor(client: LanguageClient) -> Editor:
    return Editor(client)


