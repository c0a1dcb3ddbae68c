"""Helpers for the run tests: temporary workspaces and language-server sessions through pytest-lsp."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
FAKE_RUNTIME = Path(__file__).with_name("fake_runtime.py")

#: A tiny LightningModule with its own dataloaders (a few CPU milliseconds per epoch).
MODEL = textwrap.dedent('''\
    import torch
    import torchbolt as pl
    from torch.utils.data import DataLoader, TensorDataset


    def _data(n: int, seed: int) -> TensorDataset:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 4, generator=g)
        return TensorDataset(x, x.sum(dim=1, keepdim=True))


    class LitModel(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss, prog_bar=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

        def train_dataloader(self):
            return DataLoader(_data(64, 0), batch_size=8)

        def val_dataloader(self):
            return DataLoader(_data(32, 1), batch_size=8)
    ''')


def write_workspace(root: Path, model: str = MODEL, trainer: dict[str, Any] | None = None,
                    run_table: str = "") -> Path:
    """A workspace folder with model.py and a pyproject.toml holding [tool.torchbolt.run]."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.py").write_text(model)
    trainer = {"max_epochs": 3, "enable_progress_bar": False, "enable_model_summary": False,
               **(trainer or {})}
    lines = ["[tool.torchbolt.run]", run_table, "[tool.torchbolt.run.trainer]"]
    for key, value in trainer.items():
        lines.append(f"{key} = {_toml(value)}")
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return root


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def fake_interpreter(root: Path) -> str:
    """An executable that behaves like `python -m torchbolt ...` but streams synthetic events."""
    shim = root / "fake-python"
    shim.write_text(f"#!/bin/sh\nexec {PYTHON} {FAKE_RUNTIME} \"$@\"\n")
    shim.chmod(0o755)
    return str(shim)


class Session:
    """A started client plus what the server sent it."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client = client
        self.root = root
        self.run_events: list[Any] = []
        self.run_states: list[dict[str, Any]] = []
        self.hint_refreshes = 0
        self.lens_refreshes = 0
        self.capabilities: types.ClientCapabilities | None = None
        self.message_requests: list[types.ShowMessageRequestParams] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def uri(self, name: str = "model.py") -> str:
        return (self.root / name).as_uri()

    def poke(self) -> None:
        for cond, fut in list(self._waiters):
            if not fut.done() and cond():
                fut.set_result(None)

    async def wait_for(self, cond: Callable[[], bool], timeout: float = 120.0) -> None:
        """Wait until `cond()` holds, re-checked on every message the server sends (no sleeps)."""
        if cond():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((cond, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove((cond, fut))

    async def ended(self, run_id: str, timeout: float = 180.0) -> None:
        """Wait until a run's terminal event arrived and its progress ended (the child has exited)."""
        await self.wait_for(lambda: self.events_of(run_id, "finished") or self.events_of(run_id, "failed"), timeout)
        await self.wait_for(lambda: any(isinstance(r, types.WorkDoneProgressEnd)
                                        for t, rs in self.client.progress_reports.items() if run_id in str(t)
                                        for r in rs), timeout)

    def client_has_inlay_hints_and_lens_refresh(self) -> bool:
        """True for profiles (neovim@v0.11) where hints are inlay hints and lenses can still be refreshed."""
        caps = self.capabilities
        return bool(caps and caps.text_document and caps.text_document.inlay_hint and caps.workspace
                    and caps.workspace.code_lens and caps.workspace.code_lens.refresh_support)

    def events_of(self, run_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        out = []
        for params in self.run_events:
            if params.runId == run_id:
                event = _plain(params.event)
                if kind is None or event["type"] == kind:
                    out.append(event)
        return out

    async def open(self, name: str = "model.py") -> str:
        uri = self.uri(name)
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="python", version=1, text=(self.root / name).read_text())))
        return uri

    async def command(self, name: str, arg: dict[str, Any]) -> Any:
        return await self.client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=name, arguments=[arg]))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_asdict"):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items() if k != "type" or v != "Object"}
    return value


@asynccontextmanager
async def lsp_session(root: Path, profile: str = "neovim@v0.11", trusted: bool | None = True,
                      run: dict[str, Any] | None = None, diagnostic_refresh: bool = False,
                      lens_refresh: bool = False, answer: str | None = None,
                      client_name: str | None = None, options: dict[str, Any] | None = None,
                      ) -> AsyncIterator[Session]:
    """Start the real server (repo venv) on `root`, initialize it, yield a Session, shut it down.

    `trusted=None` leaves `trusted` out of initializationOptions (a client without a trust UI); the trust
    prompt is then answered with `answer`. The per-user trust file lives next to the workspace.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TORCHBOLT_TRUST_FILE": str(root.parent / "trusted.json")}
    config = ClientServerConfig(server_command=[PYTHON, "-m", "torchbolt_lsp"], server_env=env)
    client = await config.start()
    _fix_code_action_parsing(client)
    session = Session(client, root)

    @client.feature("torchbolt/runEvent")
    def on_run_event(params: Any) -> None:
        session.run_events.append(params)
        session.poke()

    @client.feature("torchbolt/runState")
    def on_run_state(params: Any) -> None:
        session.run_states.append(_plain(params))
        session.poke()

    @client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def on_hint_refresh(params: Any) -> None:
        session.hint_refreshes += 1
        session.poke()

    @client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def on_lens_refresh(params: Any) -> None:
        session.lens_refreshes += 1
        session.poke()

    @client.feature(types.WINDOW_SHOW_MESSAGE_REQUEST)
    def on_message_request(params: types.ShowMessageRequestParams) -> types.MessageActionItem | None:
        session.message_requests.append(params)
        session.poke()
        titles = [a.title for a in params.actions or ()]
        return types.MessageActionItem(title=answer) if answer in titles else None

    # pytest-lsp records these itself; wrap to wake waiters too
    for method in (types.WINDOW_SHOW_MESSAGE, types.PROGRESS, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
                   types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_DOCUMENT):
        _wrap(client, method, session)

    capabilities = client_capabilities(profile)
    session.capabilities = capabilities
    if lens_refresh:  # inlay hints AND workspace/codeLens/refresh, as current VS Code has
        capabilities.workspace.code_lens = types.CodeLensWorkspaceClientCapabilities(refresh_support=True)
    if diagnostic_refresh:  # a pull client that also accepts workspace/diagnostic/refresh (VS Code does)
        capabilities.workspace.diagnostics = types.DiagnosticWorkspaceClientCapabilities(refresh_support=True)
    options = {"settings": {"run": run or {}}, **(options or {})}
    if trusted is not None:
        options["trusted"] = trusted
    await client.initialize_session(types.InitializeParams(
        capabilities=capabilities, root_uri=root.as_uri(),
        client_info=types.ClientInfo(name=client_name) if client_name else None,
        workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name=root.name)],
        initialization_options=options))
    try:
        yield session
    finally:
        server = getattr(client, "_server", None)
        if server is None or server.returncode is None:  # a test may have killed it
            await client.shutdown_session()
        await client.stop()


def _fix_code_action_parsing(client: LanguageClient) -> None:
    """lsprotocol 2025.0.0's client-side hook parses every CodeAction that carries a `command` as a bare
    Command (it only checks the key, not that its value is a string, as VS Code does); use the spec's rule."""
    converter = client.protocol._converter

    def hook(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], hook)  # noqa: UP007


def _wrap(client: LanguageClient, method: str, session: Session) -> None:
    fm = client.protocol.fm
    original = fm.features.get(method)
    if original is None:
        return

    def handler(*args: Any) -> Any:
        result = original(*args)
        session.poke()
        return result

    fm.features[method] = handler
