"""The torchbolt language server: a thin router over feature modules.

The core (this file) owns the document lifecycle (didOpen / didChange / didSave / didClose, watched
files), the client context, the per-document model and the workspace index. Features live one per module
under `torchbolt_lsp.features`, each exposing `register(server)`; a feature that fails to import or to
register is logged and skipped, so the server always starts.

For feature authors:
- Register handlers with `@server.feature(METHOD, options)`; the handler signature is `(ls, params)`.
  Every handler is wrapped: an exception is logged (stderr and `window/logMessage`) and answered as an
  LSP error for requests (dropped for notifications); the server keeps serving.
- Do NOT register the lifecycle notifications (didOpen/didChange/didSave/didClose, initialize,
  initialized, shutdown, didChangeWatchedFiles): pygls allows one handler per method and the core owns
  them. Subscribe instead: `server.document_listeners.append(fn)` with `fn(ls, DocumentEvent)`,
  `server.initialized_hooks.append(fn)` with `fn(ls)` (may be async), `server.shutdown_hooks`,
  and `server.index.add_listener(fn)` with `fn(changed_paths: set[str])` for cross-file facts.
- Read `server.context` (ClientContext), never raw client capabilities.
- `server.document(uri)` gives the Document (text, tree-sitter tree, ast) or None for unknown URIs;
  answer empty, never fail, for unknown documents.
- Hover contributors: `server.hover_contributors.append(fn)` with
  `fn(ls, HoverTarget) -> str | None` (markdown to append); see `features/hover.py`.
- Shared collaborators are declared slots, never attributes set from outside: `server.diagnostic_providers`
  (`fn(uri) -> [Diagnostic]`, merged into torchbolt's diagnostics; call
  `server.provider_diagnostics_changed(uris)` when they change), `server.code_action_providers`
  (`fn(ls, CodeActionParams) -> [CodeAction]`), `server.run_manager`, `server.lint_state`.
- Background work goes through `server.spawn(coro)` (kept referenced, failures logged).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import importlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.uris import from_fs_path, to_fs_path

from . import __version__
from .analysis.parse_cache import DocumentParses
from .context import ClientContext, build_context
from .document import Document, DocumentStore, parse_tree
from .workspace_index import WorkspaceIndex

if TYPE_CHECKING:
    from .features.diagnostics import LintState
    from .features.hover import HoverContributor
    from .runs.manager import RunManager

log = logging.getLogger("torchbolt_lsp")

#: Feature modules, imported in order; missing ones are skipped (teams add theirs as they land).
FEATURES: tuple[str, ...] = (
    "torchbolt_lsp.features.completion",
    "torchbolt_lsp.features.hover",
    "torchbolt_lsp.features.signature",
    "torchbolt_lsp.features.navigation",
    "torchbolt_lsp.features.symbols",
    "torchbolt_lsp.features.diagnostics",
    "torchbolt_lsp.features.code_actions",
    "torchbolt_lsp.features.code_lens",
    "torchbolt_lsp.features.inlay_hints",
    "torchbolt_lsp.features.runs",
)

#: How long an open document must be quiet before its facts are re-indexed.
INDEX_DEBOUNCE_S = 0.15
#: The longest debounced work waits for a stream of client input to pause.
BURST_WAIT_S = 5.0

#: Custom requests served by the core (used by tests and the benchmark).
DEBUG_MODULES = "torchbolt/debugModules"
INDEX_STATUS = "torchbolt/indexStatus"
DEBUG_DOCUMENT = "torchbolt/debugDocument"
#: Extra feature modules (comma-separated import paths) to load, e.g. plugins or test probes.
EXTRA_FEATURES_ENV = "TORCHBOLT_LSP_EXTRA_FEATURES"


@dataclass(frozen=True)
class DocumentEvent:
    """A lifecycle event of an open document, after the core updated its model and before indexing."""

    kind: str  # "open" | "change" | "save" | "close"
    uri: str
    document: Document | None  # None for "close"


DocumentListener = Callable[["TorchboltServer", DocumentEvent], None]
Hook = Callable[["TorchboltServer"], "None | Awaitable[None]"]
#: Diagnostics another feature merges into torchbolt's answers for a document URI (run failures).
DiagnosticProvider = Callable[[str], "list[types.Diagnostic]"]
#: Code actions another feature adds to torchbolt's code action answers (run actions).
CodeActionProvider = Callable[["TorchboltServer", types.CodeActionParams], "list[types.CodeAction]"]


class TorchboltProtocol(LanguageServerProtocol):
    """pygls' protocol with a didChange that cannot corrupt the core's copy of the text.

    pygls clamps out-of-range change positions *in place* while updating its own copy (its line split
    also differs from LSP's: it breaks at U+0085, U+2028, ...), so the params it hands on would no
    longer describe the client's edit. pygls updates from a deep copy here, and a failure there is
    logged instead of swallowing the notification.
    """

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        try:
            for change in copy.deepcopy(params.content_changes):
                self.workspace.update_text_document(params.text_document, change)
        except Exception:
            log.exception("pygls could not apply a change to its copy of %s", params.text_document.uri)
        if (user_handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield user_handler, (params,), None


def _is_notification(method: str) -> bool:
    entry = types.METHOD_TO_TYPES.get(method)
    return entry is not None and entry[1] is None



#: How long background tasks get to finish once serving ends (then the process exits regardless).
CANCEL_GRACE_S = 2.0


def run_until_done(main: Any) -> None:
    """Like `asyncio.run(main)`, but the clean-up after it is bounded.

    `asyncio.run` cancels the remaining tasks and waits for all of them to finish, and then for the default
    executor's threads: one background task or pool job that does not end promptly (a child process being
    waited on, a lint job) would keep the server alive after `exit` for good, and the editor waiting on it.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=CANCEL_GRACE_S))
                stuck = [task.get_coro() for task in pending if not task.done()]
                if stuck:
                    log.warning("exiting with %d task(s) that did not end when cancelled: %s", len(stuck), stuck)
            loop.run_until_complete(loop.shutdown_asyncgens())
        except BaseException:  # clean-up is best effort: the process is ending
            log.debug("clean-up after serving failed", exc_info=True)
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            # children killed on the way out are reaped after the loop closed; asyncio's "loop that handles pid
            # is closed" warnings would then be the last lines of the log, hiding why the server ended
            logging.getLogger("asyncio").setLevel(logging.ERROR)

class TorchboltServer(LanguageServer):
    """The language server with its state: context, documents, workspace index, extension points."""

    def __init__(self) -> None:
        super().__init__(
            "torchbolt-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=TorchboltProtocol,
        )
        self.context = ClientContext()
        self.documents = DocumentStore()
        self.index = WorkspaceIndex()
        self.parses = DocumentParses()  # open documents' last parse: re-indexing an edit is incremental
        self.hover_contributors: list[HoverContributor] = []
        self.document_listeners: list[DocumentListener] = []
        self.initialized_hooks: list[Hook] = []
        self.shutdown_hooks: list[Hook] = []
        self.exit_code = 0  # the process's exit status once serving ends (set by the `exit` notification)
        # Collaborators features share, declared here so that no feature depends on registration order:
        self.diagnostic_providers: list[DiagnosticProvider] = []
        self.code_action_providers: list[CodeActionProvider] = []
        self.lint_state: LintState | None = None  # set by features.diagnostics; code actions read it
        # told with the URIs whose provider diagnostics changed (features.diagnostics re-publishes them)
        self.diagnostics_changed: list[Callable[[set[str]], None]] = []
        self._run_manager: RunManager | None = None
        self.loaded_features: list[str] = []
        self.failed_features: dict[str, str] = {}
        self.handler_errors = 0
        self._index_tasks: dict[str, asyncio.Task[None]] = {}
        self._indexed_versions: dict[str, int] = {}
        self._index_running: dict[str, asyncio.Future[bool]] = {}  # the index job in the pool, per document
        self.index_runs: dict[str, int] = {}  # fact extractions indexed per open document (tests count them)
        self._index_ready: asyncio.Future[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._index_work: set[asyncio.Task[Any]] = set()  # index updates in flight (indexStatus waits)

    # ---------------------------------------------------------------------------------- registration
    def feature(self, feature_name: str, options: Any | None = None) -> Callable[[Any], Any]:
        """Register a handler `(ls, params)`, wrapped so that an exception never takes the server down."""
        register = super().feature(feature_name, options)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(self._isolated(feature_name, fn))
            return fn

        return decorator

    def _isolated(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        notification = _is_notification(name)

        def failed(exc: BaseException) -> None:
            self.handler_errors += 1
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("handler for %s failed:\n%s", name, text)
            try:
                self.window_log_message(
                    types.LogMessageParams(
                        type=types.MessageType.Error, message=f"torchbolt-lsp: {name} failed: {exc!r}\n{text}"
                    )
                )
            except Exception:  # the transport may be gone during shutdown
                log.debug("could not send logMessage", exc_info=True)
            if not notification:
                raise JsonRpcInternalError(
                    f"torchbolt-lsp: {name} failed: {type(exc).__name__}: {exc}"
                ) from exc

        if asyncio.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(ls: TorchboltServer, params: Any) -> Any:
                try:
                    return await fn(ls, params)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failed(exc)
                    return None

            return run_async

        @functools.wraps(fn)
        def run(ls: TorchboltServer, params: Any) -> Any:
            try:
                return fn(ls, params)
            except Exception as exc:
                failed(exc)
                return None

        return run

    # ------------------------------------------------------------------------------------ transport
    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve over stdio with the resynchronising reader (`transport.py`) instead of pygls' own loop."""
        from pygls.io_ import StdoutWriter

        from .transport import serve

        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            run_until_done(serve(self._stop_event, stdin or sys.stdin.buffer, self.protocol))
        except BrokenPipeError:
            log.error("the client closed the connection; shutting down")
        except KeyboardInterrupt:
            self.exit_code = 1
        except SystemExit as exc:  # the `exit` notification: 0 after a `shutdown` request, else 1
            self.exit_code = exc.code if isinstance(exc.code, int) else 1
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """Serve one TCP client at a time with the same resynchronising reader as stdio."""
        from .transport import CHUNK, serve_reader

        self._stop_event = stop_event = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)  # type: ignore[arg-type]
            await serve_reader(stop_event, lambda: reader.read(CHUNK), self.protocol)
            self.shutdown()

        async def listen() -> None:
            server = await asyncio.start_server(connection, host, port)
            log.info("serving on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
            async with server:
                await server.serve_forever()

        try:
            asyncio.run(listen())
        except asyncio.CancelledError:
            log.debug("TCP server cancelled")

    # -------------------------------------------------------------------------------------- helpers
    def document(self, uri: str) -> Document | None:
        """The open document for a URI, or None (features answer empty for unknown documents)."""
        return self.documents.get(uri)

    @property
    def run_manager(self) -> RunManager:
        """The run manager of this server (created on first use: it is only needed once runs are used)."""
        if self._run_manager is None:
            from .runs.manager import RunManager

            self._run_manager = RunManager(self)
        return self._run_manager

    def provider_diagnostics_changed(self, uris: set[str]) -> bool:
        """A diagnostic provider's output changed for `uris`: tell whoever publishes diagnostics.

        False when nobody does (no diagnostics feature): the provider then publishes on its own."""
        for listener in list(self.diagnostics_changed):
            try:
                listener(uris)
            except Exception:
                log.exception("diagnostics-changed listener %r failed", listener)
        return bool(self.diagnostics_changed)

    @staticmethod
    def path_of(uri: str) -> str:
        """Filesystem path of a URI (the URI itself for non-file schemes, so it still keys the index)."""
        try:
            path = to_fs_path(uri)
        except Exception:
            path = None
        return os.path.abspath(path) if path else uri

    @staticmethod
    def uri_of(path: str) -> str:
        return from_fs_path(path) or path

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a background coroutine, keeping a reference and logging its failure."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def wait_index_ready(self) -> None:
        """Wait for the initial workspace scan (returns at once when it finished or never started)."""
        if self._index_ready is not None:
            await asyncio.shield(self._index_ready)

    async def wait_index_settled(self) -> None:
        """Wait for the initial scan and every index update in flight (debounced edits, closes, file events)."""
        await self.wait_index_ready()
        while pending := [t for t in self._index_work if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    def spawn_index_work(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """spawn() for index updates, tracked so that wait_index_settled() can wait for them."""
        task = self.spawn(coro)
        self._index_work.add(task)
        task.add_done_callback(self._index_work.discard)
        return task

    # --------------------------------------------------------------------------------- index upkeep
    def schedule_index(self, doc: Document, delay: float = INDEX_DEBOUNCE_S) -> None:
        """Re-index an open document's facts after it has been quiet for `delay` seconds."""
        old = self._index_tasks.pop(doc.uri, None)
        if old is not None:
            old.cancel()
        try:
            self._index_tasks[doc.uri] = self.spawn_index_work(self._index_document(doc, delay))
        except RuntimeError:  # no running loop (unit tests driving the server object directly)
            self._index_now(doc, doc.version, doc.text)

    async def _index_document(self, doc: Document, delay: float) -> None:
        if delay:
            await self.quiet(delay)
        uri = doc.uri
        # One job per document at a time: a job cannot be stopped once it runs in the pool, and during an
        # edit burst jobs of outdated versions would pile up there, each parsing a whole file. Wait for
        # the running one (without cancelling it), then index whatever the newest version is by then.
        while (running := self._index_running.get(uri)) is not None and not running.done():
            await asyncio.wait({running})
        if self.document(uri) is not doc or self._indexed_versions.get(uri) == doc.version:
            return
        version, text = doc.version, doc.text
        job = asyncio.get_running_loop().run_in_executor(self.thread_pool, self._index_now, doc, version, text)
        self._index_running[uri] = job

        def done(f: asyncio.Future[bool]) -> None:
            # here, not after an await: a newer change cancels this task, and the facts this job put into
            # the index must still be announced
            if self._index_running.get(uri) is f:
                del self._index_running[uri]
            if not f.cancelled() and f.exception() is None and f.result():
                self.index.notify({self.path_of(uri)})

        job.add_done_callback(done)
        await asyncio.wait({job})

    def _index_now(self, doc: Document, version: int, text: str) -> bool:
        uri = doc.uri
        if self.document(uri) is not doc or doc.version != version:
            return False  # closed, reopened or edited again: a newer task will index it
        if self._indexed_versions.get(uri) == version:
            return False
        path = self.path_of(uri)
        # a version edited again while it was being parsed is not walked: the newer one will be
        facts = self.index.facts_for_text(path, text, self.parses,
                                          abandon=lambda: self.document(uri) is not doc or doc.version != version)
        if facts is None or self.document(uri) is not doc or doc.version != version:
            return False
        self.index_runs[uri] = self.index_runs.get(uri, 0) + 1
        self.index.put(path, facts, from_open_document=True)
        self._indexed_versions[uri] = version
        return True

    def ensure_all_indexed(self) -> None:
        """ensure_indexed for every open document (cheap when they are current): for cross-file answers."""
        for doc in self.documents:
            self.ensure_indexed(doc)

    def input_pending(self) -> bool:
        """Whether more client input has arrived than was handled (`transport.serve_reader` sets it)."""
        check = getattr(self.protocol, "input_pending", None)
        return bool(check is not None and check())

    async def quiet(self, delay: float) -> None:
        """Sleep `delay` seconds, then longer while client input is still arriving (an edit burst), up to
        BURST_WAIT_S in all: debounced work then runs once, on the newest text."""
        await asyncio.sleep(delay)
        waited = delay
        while self.input_pending() and waited < BURST_WAIT_S:
            await asyncio.sleep(0.02)
            waited += 0.02

    def indexed_version(self, uri: str) -> int | None:
        """The version of an open document whose facts the index holds (None: not indexed yet)."""
        return self._indexed_versions.get(uri)

    def ensure_indexed(self, doc: Document) -> None:
        """Bring the index's facts of an open document up to its current version now (for exact answers)."""
        if self._indexed_versions.get(doc.uri) != doc.version and self._index_now(doc, doc.version, doc.text):
            self.index.notify({self.path_of(doc.uri)})

    def _fire(self, event: DocumentEvent) -> None:
        for listener in list(self.document_listeners):
            try:
                listener(self, event)
            except Exception:
                self.handler_errors += 1
                log.exception("document listener %r failed on %s", listener, event.kind)


# ------------------------------------------------------------------------------------------------
# Lifecycle handlers (the core's own; features subscribe through the listener lists)
# ------------------------------------------------------------------------------------------------
def _register_core(server: TorchboltServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: TorchboltServer, params: types.InitializeParams) -> None:
        negotiated = ls.workspace.position_encoding
        encoding = str(getattr(negotiated, "value", negotiated) or "utf-16")  # "utf-8" | "utf-16" | "utf-32"
        ls.context = build_context(params, encoding)
        ls.index.configure(ls.context.root_paths, encoding)  # same object: listeners added at register() stay

    @server.feature(types.INITIALIZED)
    async def initialized(ls: TorchboltServer, params: types.InitializedParams) -> None:
        loop = asyncio.get_running_loop()
        ls._index_ready = loop.create_future()
        ls.spawn(_initial_scan(ls))
        loop.call_soon(_warm_up, ls)
        if ls.context.watched_files_dynamic:
            ls.spawn(_watch_files(ls))
        await _run_hooks(ls, ls.initialized_hooks, "initialized")

    @server.feature(types.SHUTDOWN)
    async def shutdown(ls: TorchboltServer, params: Any) -> None:
        ls.index.cancel_scan()
        await _run_hooks(ls, ls.shutdown_hooks, "shutdown")

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: TorchboltServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        ls._indexed_versions.pop(item.uri, None)  # a re-open without close: versions restart
        doc = ls.documents.open(item.uri, item.text, item.version, ls.context.position_encoding)
        ls._fire(DocumentEvent("open", item.uri, doc))
        # not at once: the requests an editor sends right after opening come first (the ast parse holds
        # the GIL for ~100 ms on a 3,000-line file); features needing exact facts call ensure_indexed
        ls.schedule_index(doc)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: TorchboltServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        doc = ls.document(uri)
        if doc is None:  # a change for a document never opened: rebuild from pygls' copy
            source = ls.workspace.get_text_document(uri).source
            doc = ls.documents.open(
                uri, source, params.text_document.version or 0, ls.context.position_encoding
            )
        else:
            doc.apply_changes(params.content_changes, params.text_document.version or doc.version + 1)
        ls._fire(DocumentEvent("change", uri, doc))
        ls.schedule_index(doc)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: TorchboltServer, params: types.DidSaveTextDocumentParams) -> None:
        doc = ls.document(params.text_document.uri)
        if doc is not None and params.text is not None and params.text != doc.text:
            doc.replace_text(params.text, doc.version)
        ls._fire(DocumentEvent("save", params.text_document.uri, doc))
        if doc is not None:
            ls.schedule_index(doc, delay=0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: TorchboltServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.close(uri)
        ls._indexed_versions.pop(uri, None)
        ls.index_runs.pop(uri, None)
        task = ls._index_tasks.pop(uri, None)
        if task is not None:
            task.cancel()
        ls._fire(DocumentEvent("close", uri, None))
        path = ls.path_of(uri)
        ls.parses.forget(path)
        if not ls.index.release_open(path):
            ls.index.notify({path})
            return

        async def reread() -> None:
            await asyncio.get_running_loop().run_in_executor(ls.thread_pool, ls.index.update_from_disk, path)
            ls.index.notify({path})

        ls.spawn_index_work(reread())

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: TorchboltServer, params: types.DidChangeWatchedFilesParams) -> None:
        paths = {ls.path_of(change.uri) for change in params.changes if change.uri.endswith(".py")}
        if not paths:
            return

        def refresh() -> None:
            for path in paths:
                ls.index.update_from_disk(path)

        async def run() -> None:
            await asyncio.get_running_loop().run_in_executor(ls.thread_pool, refresh)
            ls.index.notify(paths)

        ls.spawn_index_work(run())

    @server.feature(DEBUG_MODULES)
    def debug_modules(ls: TorchboltServer, params: Any) -> dict[str, Any]:
        """Which top-level modules the server process has imported (tests assert torch is not one)."""
        top = sorted({name.split(".")[0] for name in list(sys.modules)})
        return {
            "modules": top,
            "torch": "torch" in sys.modules,
            "lightning": "lightning" in sys.modules,
            "pid": os.getpid(),
        }

    @server.feature(DEBUG_DOCUMENT)
    def debug_document(ls: TorchboltServer, params: Any) -> dict[str, Any] | None:
        """The server's copy of a document and whether its incremental tree equals a fresh parse."""
        uri = params.uri if hasattr(params, "uri") else (params or {}).get("uri")
        doc = ls.document(str(uri))
        if doc is None:
            return None
        fresh = parse_tree(doc.data) if doc.tree is not None else None
        same = doc.tree is None or (fresh is not None and str(doc.tree.root_node) == str(fresh.root_node))
        lint = ls.lint_state
        return {"version": doc.version, "text": doc.text, "treeMatchesFullParse": same, "treeParses": doc.tree_parses,
                "indexRuns": ls.index_runs.get(doc.uri, 0),
                "lintRuns": lint.lint_runs.get(doc.uri, 0) if lint is not None else None,
                # server-wide: whole-document changes never decoded because a later one replaced them
                "supersededChanges": getattr(ls.protocol, "superseded_changes", lambda: 0)()}

    @server.feature(INDEX_STATUS)
    async def index_status(ls: TorchboltServer, params: Any) -> dict[str, Any]:
        """Wait until the index has settled (initial scan, pending updates), then report what it holds."""
        await ls.wait_index_settled()
        files = ls.index.files()
        return {
            "ready": ls.index.ready.is_set(),
            "files": len(files),
            "generation": ls.index.generation,
            "classes": sum(len(f.classes) for f in files.values()),
            "features": list(ls.loaded_features),
            "failedFeatures": dict(ls.failed_features),
            "handlerErrors": ls.handler_errors,
        }


def _warm_up(ls: TorchboltServer) -> None:
    """Build pygls' lazy (de)serializers for the hot messages now, not on the user's first keystroke.

    cattrs generates a converter per message type on first use; for completion that costs tens of ms
    (more on a loaded machine), which would land on the first completion after opening a file.
    """
    td = {"uri": "file:///torchbolt-warm-up.py"}
    pos = {"line": 0, "character": 0}
    rng = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    doc = types.MarkupContent(kind=types.MarkupKind.Markdown, value="x")
    item = types.CompletionItem(
        label="x",
        kind=types.CompletionItemKind.Method,
        detail="x",
        documentation=doc,
        sort_text="x",
        filter_text="x",
        insert_text_format=types.InsertTextFormat.Snippet,
        text_edit=types.TextEdit(range=rng, new_text="x"),
        data={"k": "v"},
    )
    location = types.Location(uri=td["uri"], range=rng)
    symbol = types.DocumentSymbol(
        name="x", kind=types.SymbolKind.Class, range=rng, selection_range=rng, children=[]
    )
    signature = types.SignatureHelp(
        signatures=[
            types.SignatureInformation(
                label="f(x)",
                documentation=doc,
                parameters=[types.ParameterInformation(label=(2, 3), documentation="x")],
            )
        ],
        active_signature=0,
        active_parameter=0,
    )
    requests: dict[str, tuple[Any, Any]] = {
        types.TEXT_DOCUMENT_COMPLETION: (
            {"textDocument": td, "position": pos},
            types.CompletionList(is_incomplete=False, items=[item]),
        ),
        types.COMPLETION_ITEM_RESOLVE: ({"label": "x", "data": {"k": "v"}}, item),
        types.TEXT_DOCUMENT_HOVER: (
            {"textDocument": td, "position": pos},
            types.Hover(contents=doc, range=rng),
        ),
        types.TEXT_DOCUMENT_SIGNATURE_HELP: ({"textDocument": td, "position": pos}, signature),
        types.TEXT_DOCUMENT_DEFINITION: ({"textDocument": td, "position": pos}, [location]),
        types.TEXT_DOCUMENT_REFERENCES: (
            {"textDocument": td, "position": pos, "context": {"includeDeclaration": True}},
            [location],
        ),
        types.TEXT_DOCUMENT_DOCUMENT_SYMBOL: ({"textDocument": td}, [symbol]),
    }
    notifications: dict[str, Any] = {
        types.TEXT_DOCUMENT_DID_OPEN: {
            "textDocument": {**td, "languageId": "python", "version": 1, "text": ""}
        },
        types.TEXT_DOCUMENT_DID_CHANGE: {
            "textDocument": {**td, "version": 2},
            "contentChanges": [{"range": {"start": pos, "end": pos}, "text": "x"}, {"text": "x"}],
        },
    }
    for method, (params, result) in requests.items():
        try:
            ls.protocol.structure_message({"jsonrpc": "2.0", "id": 0, "method": method, "params": params})
            response: Any = types.METHOD_TO_TYPES[method][1]
            ls.protocol._serialize_message(response(id=0, result=result))
        except Exception:  # best effort: a failure only means the first real request pays the cost
            log.debug("warm-up of %s failed", method, exc_info=True)
    for method, params in notifications.items():
        try:
            ls.protocol.structure_message({"jsonrpc": "2.0", "method": method, "params": params})
        except Exception:
            log.debug("warm-up of %s failed", method, exc_info=True)
    parse_tree("import lightning as L\n")


async def _initial_scan(ls: TorchboltServer) -> None:
    loop = asyncio.get_running_loop()
    try:
        changed = await loop.run_in_executor(ls.thread_pool, ls.index.scan)
        ls.index.notify(changed)
    finally:
        ls.index.ready.set()
        if ls._index_ready is not None and not ls._index_ready.done():
            ls._index_ready.set_result(None)


async def _watch_files(ls: TorchboltServer) -> None:
    try:
        await ls.client_register_capability_async(
            types.RegistrationParams(
                registrations=[
                    types.Registration(
                        id="torchbolt-watch-py",
                        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=types.DidChangeWatchedFilesRegistrationOptions(
                            watchers=[types.FileSystemWatcher(glob_pattern="**/*.py")]
                        ),
                    )
                ]
            )
        )
    except Exception as exc:  # a client may refuse; the index still follows open documents
        log.info("file watcher registration refused: %s", exc)


def _load_features(server: TorchboltServer, modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet: normal while teams work in parallel
                log.debug("feature %s not present", name)
            else:
                server.failed_features[name] = repr(exc)
                log.exception("feature %s failed to import", name)
            continue
        except Exception as exc:
            server.failed_features[name] = repr(exc)
            log.exception("feature %s failed to import", name)
            continue
        try:
            module.register(server)
            server.loaded_features.append(name)
        except Exception as exc:
            server.failed_features[name] = repr(exc)
            log.exception("feature %s failed to register", name)


async def _run_hooks(ls: TorchboltServer, hooks: list[Any], what: str) -> None:
    """Call each lifecycle hook (sync or async); one failing hook is logged and never stops the others."""
    for hook in list(hooks):
        try:
            result = hook(ls)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("%s hook %r failed", what, hook)


def create_server(features: tuple[str, ...] = FEATURES) -> TorchboltServer:
    """A ready-to-start server with the core handlers and every available feature registered."""
    server = TorchboltServer()
    _register_core(server)
    extra = tuple(name.strip() for name in os.environ.get(EXTRA_FEATURES_ENV, "").split(",") if name.strip())
    _load_features(server, features + extra)
    return server
