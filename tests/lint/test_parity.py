"""The editor and `torchbolt check` give the same answers: one fact model, one resolver, one engine.

The whole test corpus (tests/lint/cases, tests/lint/corpus, tests/lint/corpus2) is copied into one
workspace; the real server (`python -m torchbolt_lsp`, Neovim's pull profile through pytest-lsp) reports
workspace diagnostics for every file and document diagnostics for a few open ones (those are linted in
the server's worker process), and both must equal what `check` finds on the same folder.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from torchbolt_lsp.lint import config as lint_config
from torchbolt_lsp.lint.cli import check_paths, iter_python_files

HERE = Path(__file__).parent
SOURCES = ("cases", "corpus", "corpus2")
#: Files opened in the editor: their diagnostics come from the worker process on the editor's text.
OPENED = ("cases/TB102.py", "cases/TB404.py", "corpus2/models/classifier.py", "corpus2/scripts/evaluate.py",
          "cases/TB502.py")

CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "torchbolt_lsp"])
pytestmark = pytest.mark.asyncio(loop_scope="module")

Row = tuple[str, int, str, str]


def _workspace(root: Path) -> None:
    for name in SOURCES:
        shutil.copytree(HERE / name, root / name, ignore=shutil.ignore_patterns("*.txt", "__pycache__"))
    (root / "pyproject.toml").write_text('[project]\nname = "parity"\n\n[tool.torchbolt.lint]\nselect = ["TB"]\n')


def _cli(root: Path) -> dict[str, list[Row]]:
    files = iter_python_files([str(root)])
    reports, _, _ = check_paths(files, lint_config.load(root))
    out: dict[str, list[Row]] = {}
    for report in reports:
        rel = Path(report.path).resolve().relative_to(root.resolve()).as_posix()
        out[rel] = sorted((rel, f.line, f.code, f.message) for f in report.findings if f.code != "TB001")
    for path in files:
        out.setdefault(Path(path).resolve().relative_to(root.resolve()).as_posix(), [])
    return out


def _rows(root: Path, uri: str, items: list[types.Diagnostic]) -> tuple[str, list[Row]]:
    rel = Path(uri.removeprefix("file://")).resolve().relative_to(root.resolve()).as_posix()
    return rel, sorted((rel, d.range.start.line + 1, str(d.code), d.message) for d in items
                       if d.source == "torchbolt")


@pytest_lsp.fixture(config=CONFIG, scope="module")
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient):
    root = request.getfixturevalue("tmp_path_factory").mktemp("parity")
    _workspace(root)
    lsp_client.workspace_root = root  # type: ignore[attr-defined]

    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(params: types.RegistrationParams) -> None:
        return None

    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim@v0.11"), root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="parity")],
        initialization_options={"trusted": False}))
    await lsp_client.protocol.send_request_async("torchbolt/indexStatus", {})
    yield
    await lsp_client.shutdown_session()


async def test_workspace_diagnostics_equal_check(client: LanguageClient):
    root: Path = client.workspace_root  # type: ignore[attr-defined]
    expected = _cli(root)
    assert sum(len(rows) for rows in expected.values()) > 50  # the cases really produce findings
    report = await client.workspace_diagnostic_async(types.WorkspaceDiagnosticParams(previous_result_ids=[]))
    editor = dict(_rows(root, item.uri, list(item.items)) for item in report.items)
    assert sorted(editor) == sorted(expected)
    mismatched = {rel: (editor[rel], expected[rel]) for rel in expected if editor[rel] != expected[rel]}
    assert mismatched == {}


async def test_open_documents_equal_check(client: LanguageClient):
    root: Path = client.workspace_root  # type: ignore[attr-defined]
    expected = _cli(root)
    for rel in OPENED:
        path = root / rel
        uri = path.as_uri()
        client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=path.read_text())))
        report = await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))
        assert report.kind == "full"
        assert _rows(root, uri, list(report.items)) == (rel, expected[rel])
        client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))

