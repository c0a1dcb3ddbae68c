"""Any text and any position gets an answer; failures are isolated; the server never imports torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsp_support import PROFILES, WORKSPACE, write_workspace
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

pytestmark = pytest.mark.asyncio(loop_scope="module")

HERE = Path(__file__).parent
CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "torchbolt_lsp"],
    server_env={
        **os.environ,
        "TORCHBOLT_LSP_EXTRA_FEATURES": "failing_feature_probe",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    },
)


@pytest_lsp.fixture(config=CONFIG, params=PROFILES, scope="module")
async def probe_client(request: pytest.FixtureRequest, lsp_client: LanguageClient):
    root = write_workspace(request.getfixturevalue("tmp_path_factory").mktemp("robust"), WORKSPACE)
    (root / "bad_utf8.py").write_bytes(
        b"import lightning as L\nx = '\xff\xfe broken'\nclass A(L.LightningModule):\n    pass\n"
    )
    lsp_client.workspace_root = root  # type: ignore[attr-defined]
    lsp_client.registrations = []  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def on_register(params: types.RegistrationParams) -> None:
        lsp_client.registrations.extend(params.registrations)  # type: ignore[attr-defined]

    result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
        )
    )
    negotiated = result.capabilities.position_encoding
    lsp_client.position_encoding = str(getattr(negotiated, "value", negotiated) or "utf-16")  # type: ignore[attr-defined]
    await lsp_client.protocol.send_request_async("torchbolt/indexStatus", {})
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, name: str, text: str) -> str:
    uri = (client.workspace_root / name).as_uri()  # type: ignore[attr-defined]
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    return uri


async def _all_requests(client: LanguageClient, uri: str, line: int, character: int) -> None:
    """Every feature answers at this position without an error."""
    doc = types.TextDocumentIdentifier(uri=uri)
    pos = types.Position(line=line, character=character)
    completion = await client.text_document_completion_async(
        types.CompletionParams(text_document=doc, position=pos)
    )
    assert completion is None or isinstance(completion, (types.CompletionList, list))
    await client.text_document_hover_async(types.HoverParams(text_document=doc, position=pos))
    await client.text_document_signature_help_async(
        types.SignatureHelpParams(text_document=doc, position=pos)
    )
    await client.text_document_definition_async(types.DefinitionParams(text_document=doc, position=pos))
    await client.text_document_references_async(
        types.ReferenceParams(
            text_document=doc, position=pos, context=types.ReferenceContext(include_declaration=True)
        )
    )
    await client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=doc))


HOSTILE = {
    "empty": "",
    "binary": "\x00\x01\x02\xff\ufffd\x7f" * 200 + "\nclass \x00(\n",
    "surrogates": "x = '\ud800'\nimport lightning as L\nL.Trainer(\ud83d\ude00=1, acc",
    "mixed_endings": "import lightning as L\r\nclass M(L.LightningModule):\r    def tr\n\r\n    x = L.Trainer(\r",
    "tabs": "import lightning as L\nclass M(L.LightningModule):\n\tdef training_step(self, b, i):\n\t\treturn 1\n\tdef ",
    "deep_nesting": "x = " + "(" * 3000 + "\n" + "[" * 2000,
    "unterminated": 'import lightning as L\nL.Trainer(precision="""16\n\n\n' + "'" * 7,
    "emoji_cursor": "import lightning as L\nL.Trainer(accelerator='😀😀', devices=",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_text(probe_client, name):
    text = HOSTILE[name]
    uri = _open(probe_client, f"hostile_{name}.py", text)
    lines = text.splitlines() or [""]
    for line, character in [
        (0, 0),
        (len(lines) - 1, len(lines[-1])),
        (len(lines) // 2, 3),
        (10_000, 0),
        (0, 10_000),
        (len(lines) - 1, 10_000),
    ]:
        await _all_requests(probe_client, uri, line, character)


async def test_tab_indented_class_gets_hooks(probe_client):
    uri = _open(probe_client, "tabs_hooks.py", HOSTILE["tabs"])
    result = await probe_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=4, character=5)
        )
    )
    names = [i.label for i in result.items]
    assert "validation_step" in names and "training_step" not in names
    body = next(i for i in result.items if i.label == "configure_optimizers").text_edit.new_text
    # snippet clients add the def line's indentation (a tab) themselves: the body is one tab deeper than the def
    assert "\n\treturn torch.optim.Adam" in body and "\n\t\treturn" not in body


async def test_mixed_line_endings_positions(probe_client):
    text = "import lightning as L\r\nx = 1\rL.Trainer(max_epochs=1, \nprint()\r\n"
    uri = _open(probe_client, "mixed_positions.py", text)
    result = await probe_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=24)
        )
    )
    assert "accelerator=" in [i.label for i in result.items]


async def test_large_file(probe_client):
    body = "\n".join(f"def f{i}(x):\n    return x + {i}" for i in range(25_000))
    text = "import lightning.pytorch as pl\n" + body + "\ntrainer = pl.Trainer(max_epochs=1, "
    uri = _open(probe_client, "huge.py", text)
    lines = text.split("\n")
    result = await probe_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=len(lines) - 1, character=len(lines[-1])),
        )
    )
    assert len(lines) > 50_000
    assert "accelerator=" in [i.label for i in result.items]
    await _all_requests(probe_client, uri, 25_000, 4)


async def test_unknown_document(probe_client):
    uri = (probe_client.workspace_root / "never_opened.py").as_uri()
    await _all_requests(probe_client, uri, 0, 0)
    await _all_requests(probe_client, "untitled:Untitled-1", 3, 3)


async def test_file_deleted_while_open(probe_client):
    root: Path = probe_client.workspace_root
    path = root / "pkg" / "doomed.py"
    path.write_text(
        "import lightning as L\nclass D(L.LightningModule):\n    def training_step(self, b, i):\n"
        "        self.log('doomed_metric', 1)\n"
    )
    probe_client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=path.as_uri(), type=types.FileChangeType.Created)]
        )
    )
    uri = _open(probe_client, "pkg/doomed.py", path.read_text())
    path.unlink()
    probe_client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=path.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    await _all_requests(probe_client, uri, 3, 20)
    hover = await probe_client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=10)
        )
    )
    assert "def training_step" in hover.contents.value
    probe_client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await _all_requests(probe_client, uri, 3, 20)


async def test_handler_failure_is_an_lsp_error_and_server_survives(probe_client):
    with pytest.raises(JsonRpcException, match="boom on purpose"):
        await probe_client.protocol.send_request_async("torchbolt/testExplode", {})
    # listeners and hover contributors failed too (every didOpen above); the server still answers
    uri = _open(probe_client, "after_failure.py", "import lightning as L\nL.Trainer(max_epochs=1)\n")
    hover = await probe_client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=12)
        )
    )
    assert "probe saw argument max_epochs" in hover.contents.value
    status = await probe_client.protocol.send_request_async("torchbolt/indexStatus", {})
    assert status.handlerErrors >= 1
    assert "failing_feature_probe" in status.features


async def test_invalid_utf8_file_is_indexed(probe_client):
    status = await probe_client.protocol.send_request_async("torchbolt/indexStatus", {})
    assert status.ready and status.files >= 7
    uri = _open(probe_client, "uses_bad.py", "from bad_utf8 import A\nclass B(A):\n    def ")
    result = await probe_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=8)
        )
    )
    assert "training_step" in [i.label for i in result.items]


async def test_torch_never_imported(probe_client):
    """Starting, indexing a workspace and answering every kind of request leaves torch out of the process."""
    uri = _open(
        probe_client, "torch_check.py", (probe_client.workspace_root / "scripts" / "train.py").read_text()
    )
    await _all_requests(probe_client, uri, 4, 30)
    info = await probe_client.protocol.send_request_async("torchbolt/debugModules", {})
    assert info.torch is False and info.lightning is False
    assert "torch" not in info.modules and "tree_sitter" in info.modules
    maps = Path(f"/proc/{info.pid}/maps")
    if maps.exists():
        assert "libtorch" not in maps.read_text()


async def test_non_ascii_columns_follow_negotiated_encoding(probe_client):
    prefix = 'import lightning as L\nL.Trainer(precision="😀", acc'
    uri = _open(probe_client, "non_ascii.py", prefix + ")\n")
    line = 'L.Trainer(precision="😀", acc'
    encoding = probe_client.position_encoding
    width = {"utf-8": len(line.encode()), "utf-16": len(line.encode("utf-16-le")) // 2, "utf-32": len(line)}[
        encoding
    ]
    result = await probe_client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=width),
        )
    )
    item = next(i for i in result.items if i.label == "accelerator=")
    assert item.text_edit.range.start.character == width - 3
    assert item.text_edit.range.end.character == width


async def test_file_watcher_registered_when_the_client_supports_it(probe_client):
    await probe_client.protocol.send_request_async("torchbolt/indexStatus", {})
    dynamic = probe_client.capabilities.workspace.did_change_watched_files.dynamic_registration
    methods = [r.method for r in probe_client.registrations]
    if dynamic:
        assert methods.count(types.WORKSPACE_DID_CHANGE_WATCHED_FILES) == 1
        options = next(r for r in probe_client.registrations).register_options
        assert options["watchers"][0]["globPattern"] == "**/*.py"
    else:
        assert types.WORKSPACE_DID_CHANGE_WATCHED_FILES not in methods
