"""Diagnostics and quick fixes through the real server (`python -m torchbolt_lsp`) with pytest-lsp.

Two capability profiles: VS Code 1.65 (push: publishDiagnostics) and Neovim 0.11 (pull:
textDocument/diagnostic + workspace/diagnostic). Every wait is on a message, never a sleep.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import pytest_lsp
from lsp_helpers import apply_text_edits, codes, full_range, pull, record_publishes, wait_pushed
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "torchbolt_lsp"])
#: The server runs once per module and profile; the tests share its event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

WORKSPACE = {
    "pyproject.toml": """
        [project]
        name = "ws"

        [tool.torchbolt.lint]
        ignore = ["TB107"]
    """,
    "pkg/__init__.py": "",
    "pkg/base.py": """
        import torch
        import lightning as L


        class BaseModule(L.LightningModule):
            def training_step(self, batch, batch_idx):
                loss = self(batch).sum()
                self.log("train_loss", loss)
                return loss

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)
    """,
    "pkg/child.py": """
        from pkg.base import BaseModule


        class Child(BaseModule):
            def validation_step(self, batch, batch_idx):
                self.log("val_loss", self(batch).sum())
    """,
}

MISSING_OPT = """
    import torch
    import lightning as L


    class Net(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).sum()
"""


def _write(root: Path) -> None:
    for rel, text in WORKSPACE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


@pytest_lsp.fixture(config=CONFIG, params=["visual-studio-code", "neovim@v0.11"], scope="module")
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient):
    root = request.getfixturevalue("tmp_path_factory").mktemp("lintws")
    _write(root)
    lsp_client.workspace_root = root  # type: ignore[attr-defined]
    lsp_client.pull_mode = request.param.startswith("neovim")  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        return None  # accept the server's file-watcher registration
    result = await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities(request.param), root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
        initialization_options={"trusted": False, "settings": {"lint": {"ignore": ["TB202"]}}}))
    lsp_client.capabilities_of_server = result.capabilities  # type: ignore[attr-defined]
    lsp_client.published = record_publishes(lsp_client)  # type: ignore[attr-defined]
    await lsp_client.protocol.send_request_async("torchbolt/indexStatus", {})
    yield
    await lsp_client.shutdown_session()


class Doc:
    """An open document that the test edits with full-text changes."""

    counter = 0

    def __init__(self, client: LanguageClient, text: str, name: str | None = None) -> None:
        Doc.counter += 1
        self.client = client
        self.text = textwrap.dedent(text).lstrip("\n")
        self.version = 1
        root: Path = client.workspace_root  # type: ignore[attr-defined]
        self.uri = (root / (name or f"doc_{Doc.counter}.py")).as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=self.uri, language_id="python", version=1, text=self.text)))

    def change(self, text: str) -> None:
        self.version += 1
        self.text = text
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    async def diagnostics(self, until=lambda d: True) -> list[types.Diagnostic]:
        """Current torchbolt diagnostics: pulled (Neovim 0.11) or waited for (VS Code)."""
        if self.client.pull_mode:  # type: ignore[attr-defined]
            report = await pull(self.client, self.uri)
            assert report.kind == "full"
            assert until(report.items), codes(report.items)
            return list(report.items)
        return list(await wait_pushed(self.client, self.uri, until))

    async def actions(self, only: list[str] | None = None, rng: types.Range | None = None,
                      diags: list[types.Diagnostic] | None = None) -> list[types.CodeAction]:
        result = await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri), range=rng or full_range(self.text),
            context=types.CodeActionContext(diagnostics=diags or [], only=only)))
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    def apply(self, action: types.CodeAction) -> None:
        assert action.edit is not None and action.edit.changes is not None
        self.change(apply_text_edits(self.text, action.edit.changes[self.uri]))

    def close(self) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri)))


async def test_capability_path(client: LanguageClient):
    caps = client.capabilities_of_server  # type: ignore[attr-defined]
    assert caps.diagnostic_provider is not None  # advertised; push clients simply ignore it
    assert caps.code_action_provider is not None


async def test_diagnostics_after_open_edit_and_fix(client: LanguageClient):
    doc = Doc(client, MISSING_OPT)
    diags = await doc.diagnostics(lambda d: "TB101" in codes(d))
    tb101 = next(d for d in diags if d.code == "TB101")
    assert tb101.source == "torchbolt" and tb101.severity == types.DiagnosticSeverity.Error
    assert tb101.range.start.line == 4  # the class name `Net`
    assert "configure_optimizers" in tb101.message
    # an edit adds a hard-coded device: a new finding appears
    doc.change(doc.text.replace("torch.nn.Linear(4, 1)", "torch.nn.Linear(4, 1).cuda()"))
    await doc.diagnostics(lambda d: {"TB101", "TB201"} <= set(codes(d)))
    # fixing both by hand: the findings disappear
    fixed = doc.text.replace(".cuda()", "") + (
        "\n    def configure_optimizers(self):\n        return torch.optim.Adam(self.parameters())\n")
    doc.change(fixed)
    await doc.diagnostics(lambda d: codes(d) == [])
    doc.close()
    if client.pull_mode:  # type: ignore[attr-defined]
        assert client.published == []  # type: ignore[attr-defined]  # a pull client is never pushed to


async def test_quick_fix_rename_misspelled_hook(client: LanguageClient):
    doc = Doc(client, """
        import torch
        import lightning as L


        class Net(L.LightningModule):
            def training_step(self, batch, batch_idx):
                return self(batch).sum()

            def configure_optimiser(self):  # the optimizer lives here
                return torch.optim.Adam(self.parameters())
    """)
    diags = await doc.diagnostics(lambda d: "TB103" in codes(d))
    tb103 = next(d for d in diags if d.code == "TB103")
    actions = await doc.actions(rng=tb103.range, diags=[tb103])
    rename = next(a for a in actions if "Rename to configure_optimizers" in a.title)
    assert rename.kind == types.CodeActionKind.QuickFix
    assert rename.diagnostics and rename.diagnostics[0].code == "TB103"
    edits = rename.edit.changes[doc.uri]
    assert len(edits) == 1 and edits[0].range.start.line == 8  # minimal: one word on one line
    doc.apply(rename)
    assert "def configure_optimizers(self):  # the optimizer lives here" in doc.text  # comment kept
    await doc.diagnostics(lambda d: codes(d) == [])
    doc.close()


async def test_fix_all_of_kind_and_source_fix_all(client: LanguageClient):
    doc = Doc(client, """
        import lightning as L
        from lightning.pytorch.callbacks import EarlyStopping

        trainer = L.Trainer(gpus=2, precision=16, max_epoch=3, accelerator="gpuu")
        other = L.Trainer(precision="bf16")
        stop = EarlyStopping(monitor="loss", mode="minimum")
    """)
    diags = await doc.diagnostics(lambda d: codes(d).count("TB503") == 2)
    first = next(d for d in diags if d.code == "TB503")
    actions = await doc.actions(rng=first.range, diags=[first])
    fix_kind = next(a for a in actions if a.title.startswith("Fix all TB503"))
    doc.apply(fix_kind)
    assert 'precision="16-mixed"' in doc.text and 'precision="bf16-mixed"' in doc.text
    after = await doc.diagnostics(lambda d: "TB503" not in codes(d))
    assert "TB502" in codes(after)  # other kinds untouched
    # source.fixAll.torchbolt: everything fixable in one action
    actions = await doc.actions(only=["source.fixAll"])
    assert [a.kind for a in actions] == ["source.fixAll.torchbolt"]
    doc.apply(actions[0])
    assert 'L.Trainer(accelerator="gpu", devices=2' not in doc.text  # accelerator given: only devices
    assert "devices=2" in doc.text
    # did-you-mean guesses are unsafe fixes: never in source.fixAll, offered as quick fixes titled so
    assert "max_epoch=3" in doc.text and 'mode="minimum"' in doc.text and 'accelerator="gpuu"' in doc.text
    remaining = await doc.diagnostics(lambda d: "TB502" not in codes(d))
    guess = next(d for d in remaining if d.code == "TB501")
    quick = [a for a in await doc.actions(rng=guess.range, diags=[guess]) if "max_epochs" in a.title]
    assert [a.title for a in quick] == ["Rename to max_epochs (TB501) (unsafe)"] and not quick[0].is_preferred
    # a plain quick-fix request never returns the source action
    assert all(a.kind != "source.fixAll.torchbolt" for a in await doc.actions())
    doc.close()


async def test_broken_text_keeps_last_good_diagnostics(client: LanguageClient):
    doc = Doc(client, MISSING_OPT)
    await doc.diagnostics(lambda d: codes(d) == ["TB101"])
    before = len(client.published)  # type: ignore[attr-defined]
    doc.change(doc.text + "\n    def configure_opt(\n")  # half-typed: does not parse
    if client.pull_mode:  # type: ignore[attr-defined]
        report = await pull(client, doc.uri)
        assert codes(report.items) == ["TB101"]  # the last good result, not an empty list
    doc.change(doc.text.replace("def configure_opt(\n", "def configure_optimizers(self):\n"
                                "        return torch.optim.Adam(self.parameters())\n"))
    await doc.diagnostics(lambda d: codes(d) == [])
    mine = [p for p in client.published[before:] if p.uri == doc.uri]  # type: ignore[attr-defined]
    # pushed: exactly the final (empty, fixed) state; never an empty list for the broken text in between
    assert all(p.version != 2 for p in mine)
    doc.close()


async def test_cross_file_monitor_updates(client: LanguageClient):
    watcher = Doc(client, """
        from lightning.pytorch.callbacks import ModelCheckpoint

        ckpt = ModelCheckpoint(monitor="val_acc")
    """, name="watch_cb.py")
    diags = await watcher.diagnostics(lambda d: "TB404" in codes(d))
    assert "val_acc" in next(d for d in diags if d.code == "TB404").message
    logger = Doc(client, """
        import lightning as L


        class Acc(L.LightningModule):
            def validation_step(self, batch, batch_idx):
                self.log("val_acc", 1.0)
    """, name="acc_model.py")
    await logger.diagnostics()
    if client.pull_mode:  # type: ignore[attr-defined]
        # a pull answers from the index after pending updates of other open documents landed
        report = await pull(client, watcher.uri)
        assert "TB404" not in codes(report.items)
    else:
        await wait_pushed(client, watcher.uri, lambda d: "TB404" not in codes(d))
    logger.close()
    watcher.close()


async def test_cross_file_inheritance_updates(client: LanguageClient):
    base = Doc(client, """
        import lightning as L


        class SharedBase(L.LightningModule):
            def training_step(self, batch, batch_idx):
                return self(batch).sum()
    """, name="shared_base.py")
    child = Doc(client, """
        from shared_base import SharedBase


        class Leaf(SharedBase):
            def validation_step(self, batch, batch_idx):
                self.log("leaf_val", 1.0)
    """, name="leaf.py")
    # the subclass inherits training_step from the other file, and the missing optimizer with it
    diags = await child.diagnostics(lambda d: "TB101" in codes(d))
    assert "`Leaf` defines training_step" in next(d for d in diags if d.code == "TB101").message
    base.change(base.text + "\n    def configure_optimizers(self):\n        return None\n")
    await base.diagnostics(lambda d: "TB101" not in codes(d))
    if client.pull_mode:  # type: ignore[attr-defined]
        report = await pull(client, child.uri)
        assert "TB101" not in codes(report.items)
    else:
        await wait_pushed(client, child.uri, lambda d: "TB101" not in codes(d))
    child.close()
    base.close()


async def test_noqa_and_configuration(client: LanguageClient):
    doc = Doc(client, """
        import torch
        import lightning as L


        class Net(L.LightningModule):  # noqa: TB101
            def training_step(self, batch, batch_idx):
                self.eval()
                x = batch.cuda()  # noqa
                self(x).sum()
    """)
    # TB101 silenced by noqa: CODE, TB201 by bare noqa, TB107 by pyproject ignore, TB202 by editor settings
    diags = await doc.diagnostics(lambda d: True)
    assert codes(diags) == []
    doc.close()


async def test_pyproject_change_applies_without_restart(client: LanguageClient):
    root: Path = client.workspace_root  # type: ignore[attr-defined]
    pyproject = root / "pyproject.toml"
    original = pyproject.read_text()
    doc = Doc(client, MISSING_OPT)
    await doc.diagnostics(lambda d: codes(d) == ["TB101"])
    try:
        pyproject.write_text(original.replace('ignore = ["TB107"]', 'ignore = ["TB107", "TB1"]'))
        doc.change(doc.text + "\n")  # any edit: the server re-reads a changed configuration before linting
        await doc.diagnostics(lambda d: codes(d) == [])
    finally:
        pyproject.write_text(original)
    doc.change(doc.text + "\n")
    await doc.diagnostics(lambda d: codes(d) == ["TB101"])
    doc.close()


async def test_pull_unchanged_and_workspace(client: LanguageClient):
    if not client.pull_mode:  # type: ignore[attr-defined]
        pytest.skip("pull-only behaviour")
    doc = Doc(client, MISSING_OPT)
    first = await pull(client, doc.uri)
    assert first.result_id
    again = await pull(client, doc.uri, previous=first.result_id)
    assert again.kind == "unchanged" and again.result_id == first.result_id
    report = await client.workspace_diagnostic_async(types.WorkspaceDiagnosticParams(previous_result_ids=[]))
    by_uri = {item.uri: codes(item.items) for item in report.items}
    assert by_uri[doc.uri] == ["TB101"]
    root: Path = client.workspace_root  # type: ignore[attr-defined]
    assert by_uri[(root / "pkg" / "child.py").as_uri()] == []  # inherits training_step + optimizers
    doc.close()


async def test_server_never_imports_torch(client: LanguageClient):
    doc = Doc(client, MISSING_OPT)
    await doc.diagnostics(lambda d: "TB101" in codes(d))
    await doc.actions()
    info = await client.protocol.send_request_async("torchbolt/debugModules", {})
    assert info.torch is False and info.lightning is False
    doc.close()
