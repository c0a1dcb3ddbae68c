"""Helpers for the language-server tests: an editor that opens documents with a `|` cursor marker."""

from __future__ import annotations

import textwrap
from pathlib import Path

from lsprotocol import types
from pytest_lsp import LanguageClient

PROFILES = ["visual-studio-code", "neovim@v0.11"]

#: Files of the shared test workspace (a package with cross-file inheritance, a training script).
WORKSPACE: dict[str, str] = {
    "pkg/__init__.py": "from .base import BaseModule\n",
    "pkg/base.py": """
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import Callback


        class BaseModule(pl.LightningModule):
            def training_step(self, batch, batch_idx):
                loss = self(batch)
                self.log("train_loss", loss, on_epoch=True)
                return loss


        class BaseCallback(Callback):
            pass
    """,
    "pkg/models.py": """
        from pkg.base import BaseModule


        class Classifier(BaseModule):
            def validation_step(self, batch, batch_idx):
                self.log("val_loss", 0.5)
                self.log_dict({"val_acc": 1.0, "val_f1": 0.9})
    """,
    "pkg/reexport_user.py": """
        from pkg import BaseModule


        class Reexported(BaseModule):
            pass
    """,
    "scripts/helpers.py": """
        import pytorch_lightning as ptl


        class ScriptBase(ptl.LightningDataModule):
            pass
    """,
    "scripts/train.py": """
        from helpers import ScriptBase
        import lightning as L
        from lightning.pytorch.callbacks import ModelCheckpoint, EarlyStopping

        trainer = L.Trainer(max_epochs=3, callbacks=[ModelCheckpoint(monitor="val_loss")])
        stopper = EarlyStopping(monitor="train_loss_epoch")
    """,
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


class Editor:
    """Opens documents and finds positions by a `|` cursor marker in the text."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.version = 0
        self.counter = 0

    def open(self, text: str, name: str | None = None) -> tuple[str, types.Position]:
        """Open `text` (with one `|` marking the cursor) as a new document; return its uri and the cursor."""
        text = textwrap.dedent(text).lstrip("\n")
        offset = text.index("|") if "|" in text else len(text)
        text = text.replace("|", "", 1)
        self.counter += 1
        root: Path = self.client.workspace_root  # type: ignore[attr-defined]
        uri = (root / (name or f"open_{self.counter}.py")).as_uri()
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
            )
        )
        return uri, position_of(text, offset)

    async def complete(self, text: str, name: str | None = None) -> list[types.CompletionItem]:
        uri, pos = self.open(text, name)
        result = await self.client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
        )
        self.close(uri)
        assert result is not None
        items = result.items if isinstance(result, types.CompletionList) else result
        if isinstance(result, types.CompletionList):
            assert result.is_incomplete is False
        return list(items)

    @staticmethod
    def labels(items: list[types.CompletionItem]) -> list[str]:
        return [i.label for i in items]

    @staticmethod
    def new_text(item: types.CompletionItem) -> str:
        edit = item.text_edit
        assert edit is not None
        return edit.new_text

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )


def position_of(text: str, offset: int) -> types.Position:
    """LSP position (UTF-16) of a character offset."""
    before = text[:offset]
    line = before.count("\n")
    col_text = before[before.rfind("\n") + 1 :]
    return types.Position(line=line, character=len(col_text.encode("utf-16-le")) // 2)
