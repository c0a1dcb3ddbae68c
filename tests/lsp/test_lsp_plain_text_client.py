"""A client without snippet or resolve support (Neovim 0.7's profile) gets plain-text edits and inline docs."""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsp_support import WORKSPACE, Editor, write_workspace
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from torchbolt_lsp.features.completion import plain


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "torchbolt_lsp"]), scope="module"
)
async def old_client(request: pytest.FixtureRequest, lsp_client: LanguageClient):
    root = write_workspace(request.getfixturevalue("tmp_path_factory").mktemp("plain"), WORKSPACE)
    lsp_client.workspace_root = root  # type: ignore[attr-defined]
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("neovim@v0.7"), root_uri=root.as_uri())
    )
    yield
    await lsp_client.shutdown_session()


@pytest.mark.parametrize(
    ("snippet", "text"),
    [
        ("f(${1:x}, ${2})$0", "f(x, )"),
        (
            "return torch.optim.Adam(self.parameters(), lr=${1:1e-3})",
            "return torch.optim.Adam(self.parameters(), lr=1e-3)",
        ),
        ("no placeholders", "no placeholders"),
    ],
)
def test_plain(snippet, text):
    assert plain(snippet) == text


@pytest.mark.asyncio(loop_scope="module")
async def test_plain_text_hooks_and_hover(old_client):
    editor = Editor(old_client)
    items = await editor.complete("import lightning as L\nclass M(L.LightningModule):\n    def |")
    opt = next(i for i in items if i.label == "configure_optimizers")
    assert opt.insert_text_format == types.InsertTextFormat.PlainText
    assert "${" not in opt.text_edit.new_text and "lr=1e-3" in opt.text_edit.new_text
    # no resolveSupport: the documentation comes with the item
    doc = opt.documentation
    assert doc is not None and "Entry points:" in (doc if isinstance(doc, str) else doc.value)
    uri, pos = editor.open("import lightning as L\nL.Trainer(max_e|pochs=1)\n")
    hover = await old_client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=pos)
    )
    markdown = types.MarkupKind.Markdown in (old_client.capabilities.text_document.hover.content_format or [])
    assert (hover.contents.kind == types.MarkupKind.Markdown) is markdown
    assert ("```" in hover.contents.value) is markdown and "max_epochs" in hover.contents.value
