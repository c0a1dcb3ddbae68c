"""pytest-lsp fixtures: the real server process under the VS Code and Neovim 0.11 capability profiles."""

from __future__ import annotations

import sys

import pytest
import pytest_lsp
from lsp_support import PROFILES, WORKSPACE, Editor, write_workspace
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

CONFIG = ClientServerConfig(server_command=[sys.executable, "-m", "torchbolt_lsp"])


@pytest_lsp.fixture(config=CONFIG, params=PROFILES, scope="module")
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient):
    """A running server, initialized with the module's client profile on a fresh copy of WORKSPACE."""
    root = write_workspace(
        request.getfixturevalue("tmp_path_factory").mktemp("ws"),
        getattr(request.module, "WORKSPACE", WORKSPACE),
    )
    lsp_client.workspace_root = root  # type: ignore[attr-defined]
    result = await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="ws")],
            initialization_options={"trusted": False, "settings": {}},
        )
    )
    negotiated = result.capabilities.position_encoding
    lsp_client.position_encoding = str(getattr(negotiated, "value", negotiated) or "utf-16")  # type: ignore[attr-defined]
    await lsp_client.protocol.send_request_async("torchbolt/indexStatus", {})
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def editor(client: LanguageClient) -> Editor:
    return Editor(client)
