"""Lightning diagnostics: the lint engine (`torchbolt_lsp.lint`) run for open documents.

Push or pull by client capability (read once in the context): clients with `textDocument.diagnostic`
pull (`textDocument/diagnostic`, `workspace/diagnostic`); others get `publishDiagnostics`. In push
mode every change is debounced (DEBOUNCE_S), linted in the thread pool on a snapshot, and dropped when
the document moved on meanwhile. Cross-file facts come from the core's workspace index; when another
file's lint-relevant facts change, open documents are re-linted (push) or the client is asked to
re-pull (pull). Text that does not parse keeps the last good diagnostics instead of flickering to zero.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types

from ..analysis.installed import installed_sources, run_interpreter
from ..lint import RULES, ConfigError, LintConfig, Project, lint_source
from ..lint import config as lint_config
from ..lint.model import Finding
from ..lint.worker import BrokenProcessPool, LintPool, StaleFacts, facts_key, lint_job

if TYPE_CHECKING:
    from ..server import DocumentEvent, TorchboltServer

log = logging.getLogger(__name__)

#: Quiet time after the last keystroke before a document is re-linted (push mode).
DEBOUNCE_S = 0.25
#: `Diagnostic.source` of every torchbolt finding (code actions match on it).
SOURCE = "torchbolt"
#: Cap for workspace diagnostics (a huge repository must not stall the client).
MAX_WORKSPACE_FILES = 2000

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Linted:
    """The last lint of one document: for which version and index generation, with what result."""

    version: int
    generation: int
    findings: list[Finding]
    diagnostics: list[types.Diagnostic]
    result_id: str
    text: str


@dataclass
class LintState:
    """Per-server diagnostics state (the server's declared `lint_state` slot)."""

    config: LintConfig = field(default_factory=LintConfig)
    results: dict[str, Linted] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    generation: int = 0  # bumped when cross-file facts change
    facts: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # cross-file key of each indexed path
    interpreter: str | None = None  # the run interpreter whose installed Lightning the rules read
    sent: dict[str, tuple[int, str]] = field(default_factory=dict)  # facts the lint worker holds, by path
    published: int = 0  # publishDiagnostics sent (tests and the benchmark read it)
    pool: LintPool = field(default_factory=LintPool)
    config_stamp: tuple[tuple[str, int], ...] = ()  # pyproject.toml files the config was read from, mtimes
    # Diagnostics of other features (the server's `diagnostic_providers`) are merged into every answer.
    extra: list[Any] = field(default_factory=list)
    extra_generation: int = 0  # bumped when an extra provider's diagnostics change (pull result ids)
    running: dict[str, asyncio.Future[Any]] = field(default_factory=dict)  # the lint job in flight, per uri
    lint_runs: dict[str, int] = field(default_factory=dict)  # lint jobs started per uri (tests count them)


# --------------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------------
def _units(text: str, encoding: str) -> int:
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class Positions:
    """Converts lint positions (1-based line, character column) to LSP positions for one text."""

    def __init__(self, text: str, encoding: str) -> None:
        self.lines = _LINE_BREAK.split(text)
        self.encoding = encoding

    def position(self, line: int, col: int) -> types.Position:
        index = min(max(line - 1, 0), len(self.lines) - 1)
        text = self.lines[index]
        prefix = text[:max(col, 0)]
        units = len(prefix) if prefix.isascii() else _units(prefix, self.encoding)
        return types.Position(line=index, character=units)

    def range(self, line: int, col: int, end_line: int, end_col: int) -> types.Range:
        return types.Range(start=self.position(line, col), end=self.position(end_line, end_col))

    def char_col(self, line0: int, units: int) -> int:
        """Character column of an LSP column on a 0-based line."""
        if not 0 <= line0 < len(self.lines):
            return 0
        text = self.lines[line0]
        if text.isascii() or self.encoding == "utf-32":
            return min(units, len(text))
        count = 0
        for i, ch in enumerate(text):
            if count >= units:
                return i
            count += _units(ch, self.encoding)
        return len(text)


def to_diagnostic(finding: Finding, pos: Positions) -> types.Diagnostic:
    rule = RULES.get(finding.code)
    return types.Diagnostic(
        range=pos.range(finding.line, finding.col, finding.end_line, finding.end_col),
        message=finding.message,
        severity=types.DiagnosticSeverity(int(finding.severity)),
        code=finding.code,
        source=SOURCE,
        data={"name": rule.name if rule else "", "fixable": bool(finding.fixes)},
    )


def effective_config(root_paths: tuple[str, ...], select: tuple[str, ...], ignore: tuple[str, ...]
                     ) -> tuple[LintConfig, str | None]:
    """`[tool.torchbolt.lint]` of the first workspace root plus the editor's settings.lint; an error text."""
    error = None
    base = LintConfig()
    if root_paths:
        try:
            base = lint_config.load(Path(root_paths[0]))
        except ConfigError as exc:
            error = str(exc)
    try:
        return base.merged(select=list(select) or None, extend_ignore=list(ignore)), error
    except ConfigError as exc:
        return base, f"settings.lint: {exc}"


def config_stamp(root_paths: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """Modification times of the pyproject.toml files the configuration can come from (the first root's
    and its parents'); a few stat calls, cheap enough to check before every lint."""
    if not root_paths:
        return ()
    here = Path(root_paths[0]).resolve()
    out = []
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        try:
            out.append((str(candidate), candidate.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(out)


def refresh_config(ls: TorchboltServer, state: LintState) -> bool:
    """Re-read `[tool.torchbolt.lint]` when a pyproject.toml changed on disk; True when the rules changed.

    The core watches only Python files, so the configuration is checked here instead, before each lint.
    """
    stamp = config_stamp(ls.context.root_paths)
    if stamp == state.config_stamp:
        return False
    state.config_stamp = stamp
    cfg, error = effective_config(ls.context.root_paths, ls.context.settings.lint.select,
                                  ls.context.settings.lint.ignore)
    if error:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning,
                                                       message=f"torchbolt lint settings: {error}"))
    root = ls.context.root_paths[0] if ls.context.root_paths else None
    interpreter = run_interpreter(root)
    if interpreter != state.interpreter:
        state.interpreter = interpreter
        ls.index.set_installed(installed_sources(interpreter))
        state.generation += 1
        if cfg == state.config:
            return True
    if cfg == state.config:
        return False
    state.config = cfg
    state.generation += 1  # every cached result was computed with the old selection
    return True


# --------------------------------------------------------------------------------------------------
# Linting documents
# --------------------------------------------------------------------------------------------------
def to_linted(ls: TorchboltServer, state: LintState, version: int, generation: int, text: str,
              findings: list[Finding]) -> Linted:
    """Cache entry with LSP diagnostics for findings computed on `text`."""
    pos = Positions(text, ls.context.position_encoding)
    diagnostics = [to_diagnostic(f, pos) for f in findings]
    digest = abs(hash(tuple((f.code, f.line, f.col, f.end_line, f.end_col, f.message) for f in findings)))
    return Linted(version, generation, findings, diagnostics, f"{version}:{generation}:{digest}", text)


async def lint_off_loop(ls: TorchboltServer, state: LintState, uri: str, version: int, text: str
                        ) -> Linted | None:
    """Lint in the worker process (thread pool when unavailable); None when the text does not parse."""
    loop = asyncio.get_running_loop()
    generation = state.generation
    path = ls.path_of(uri)

    def job(full: bool) -> tuple[Any, ...]:
        # the linted text's own facts are extracted by the worker; the others travel once, then by key
        files: dict[str, Any] = {}
        for other, facts in ls.index.files().items():
            if other == path:
                continue
            key = facts_key(facts)
            files[other] = key if not full and state.sent.get(other) == key else facts
            state.sent[other] = key
        return (lint_job, text, path, files, state.config, ls.context.root_paths, state.interpreter)

    async def run(executor: Any, full: bool) -> tuple[bool, list[Finding]]:
        # a running job cannot be stopped: when the awaiting task is cancelled (a newer edit) the job
        # still holds the document's slot until it ends, so the next lint starts after it (lint_slot)
        state.lint_runs[uri] = state.lint_runs.get(uri, 0) + 1
        future = loop.run_in_executor(executor, *job(full))
        state.running[uri] = future

        def free(f: asyncio.Future[Any]) -> None:
            if state.running.get(uri) is f:
                del state.running[uri]

        future.add_done_callback(free)
        await asyncio.wait({future})
        return cast("tuple[bool, list[Finding]]", future.result())

    try:
        try:
            parsed, findings = await run(state.pool.executor(ls.thread_pool), False)
        except StaleFacts:
            parsed, findings = await run(state.pool.executor(ls.thread_pool), True)
    except BrokenProcessPool:
        state.pool.broken()
        parsed, findings = await run(ls.thread_pool, True)
    if not parsed:
        return None
    return to_linted(ls, state, version, generation, text, findings)


async def lint_slot(state: LintState, uri: str) -> None:
    """Wait until no lint of `uri` runs: one job per document at a time, so an edit burst queues no lints
    of outdated versions behind each other; the caller then snapshots the newest text."""
    while (running := state.running.get(uri)) is not None and not running.done():
        await asyncio.wait({running})


def current(ls: TorchboltServer, state: LintState, uri: str) -> Linted | None:
    """The cached lint of an open document when it matches its version and the index generation."""
    doc = ls.document(uri)
    cached = state.results.get(uri)
    if doc is None or cached is None:
        return None
    if cached.version == doc.version and cached.generation == state.generation:
        return cached
    return None


async def ensure_linted(ls: TorchboltServer, state: LintState, uri: str) -> Linted | None:
    """Lint an open document now (off the event loop) unless the cache is current; keeps last good on errors."""
    hit = current(ls, state, uri)
    if hit is not None:
        return hit
    await lint_slot(state, uri)
    hit = current(ls, state, uri)
    if hit is not None:
        return hit
    doc = ls.document(uri)
    if doc is None:
        return None
    snap = doc.snapshot()
    linted = await lint_off_loop(ls, state, snap.uri, snap.version, snap.text)
    if linted is None:
        # syntax error while typing: keep the last good diagnostics (re-stamped so pulls stay consistent)
        old = state.results.get(uri)
        return old
    doc = ls.document(uri)
    if doc is not None and doc.version == snap.version:
        state.results[uri] = linted
    return linted


def _publish(ls: TorchboltServer, state: LintState, uri: str, version: int | None,
             diagnostics: list[types.Diagnostic]) -> None:
    state.published += 1
    diagnostics = [*diagnostics, *extra_diagnostics(state, uri)]
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics,
                                                                         version=version))


def extra_diagnostics(state: LintState, uri: str) -> list[types.Diagnostic]:
    """Diagnostics other features contribute for a document (see LintState.extra)."""
    out: list[types.Diagnostic] = []
    for provider in state.extra:
        try:
            out.extend(provider(uri))
        except Exception:
            log.exception("extra diagnostics provider %r failed", provider)
    return out


def extras_pulled(ls: TorchboltServer) -> bool:
    """Whether extra diagnostics travel in pull answers: only for pull clients that accept a refresh request
    (others would not see a change until their next pull, so they get them pushed)."""
    return bool(ls.context.pull_diagnostics and ls.context.diagnostic_refresh)


def extra_changed(ls: TorchboltServer, state: LintState, uris: set[str]) -> None:
    """An extra provider's diagnostics changed for `uris`: push them merged with the lint results (push
    clients), ask a pull client to re-pull, or push only the extras to a pull client without refresh
    (its lint results keep coming from pulls). Files a client does not pull (pyproject.toml) are pushed."""
    state.extra_generation += 1
    pulled = extras_pulled(ls)
    for uri in uris:
        if pulled and ls.document(uri) is not None:
            continue
        linted = state.results.get(uri)
        lint = linted.diagnostics if linted is not None and not ls.context.pull_diagnostics else []
        _publish(ls, state, uri, None, lint)
    if pulled:
        ls.workspace_diagnostic_refresh(None)


async def _lint_and_publish(ls: TorchboltServer, state: LintState, uri: str, delay: float) -> None:
    if delay:
        await ls.quiet(delay)
    await lint_slot(state, uri)
    doc = ls.document(uri)
    if doc is None:
        return
    if refresh_config(ls, state):
        for other in list(ls.documents):
            if other.uri != uri:
                schedule(ls, state, other.uri)
    snap = doc.snapshot()
    hit = current(ls, state, uri)
    if hit is not None:
        return  # nothing changed since the last publish
    linted = await lint_off_loop(ls, state, uri, snap.version, snap.text)
    doc = ls.document(uri)
    if doc is None or doc.version != snap.version:
        return  # a newer version exists: its own task publishes
    if linted is None:
        return  # broken text: the client keeps showing the last good diagnostics
    state.results[uri] = linted
    _publish(ls, state, uri, snap.version, linted.diagnostics)


def schedule(ls: TorchboltServer, state: LintState, uri: str, delay: float = DEBOUNCE_S) -> None:
    """(Re)start the debounced lint of one document (push mode)."""
    old = state.tasks.pop(uri, None)
    if old is not None:
        old.cancel()
    try:
        task = ls.spawn(_lint_and_publish(ls, state, uri, delay))
    except RuntimeError:  # no running loop: unit tests driving the object directly
        return
    state.tasks[uri] = task

    def forget(done: asyncio.Task[Any]) -> None:
        if state.tasks.get(uri) is done:
            state.tasks.pop(uri, None)

    task.add_done_callback(forget)


def on_document(ls: TorchboltServer, state: LintState, event: DocumentEvent) -> None:
    """Open/change/save/close of a document (called by the core on the event loop)."""
    pull = ls.context.pull_diagnostics
    if event.kind == "close":
        task = state.tasks.pop(event.uri, None)
        if task is not None:
            task.cancel()
        state.results.pop(event.uri, None)
        state.lint_runs.pop(event.uri, None)
        if not pull:
            _publish(ls, state, event.uri, None, [])  # clear the editor's markers for a closed file
        return
    if pull:
        return  # the client pulls; nothing to push
    schedule(ls, state, event.uri, DEBOUNCE_S if event.kind == "change" else 0.0)


def on_index_change(ls: TorchboltServer, state: LintState, paths: set[str]) -> None:
    """The core's index changed for `paths`: re-lint others when lint-relevant cross-file facts changed."""
    changed = False
    for path in paths:
        facts = ls.index.get(path)
        new = facts.cross_file_key() if facts is not None else None
        old = state.facts.get(path)
        if new is None:
            changed = changed or old is not None
            state.facts.pop(path, None)
        elif new != old:
            # the file's own edits already re-lint it; only a change in what others see matters
            changed = changed or old is not None or bool(facts and (facts.classes or facts.logged or facts.fits))
            state.facts[path] = new
    if not changed:
        return
    state.generation += 1
    if ls.context.pull_diagnostics:
        if ls.context.diagnostic_refresh:
            ls.workspace_diagnostic_refresh(None)
        return
    for doc in list(ls.documents):
        if ls.path_of(doc.uri) in paths and len(paths) == 1:
            continue  # the edited file itself: its didChange already scheduled it
        schedule(ls, state, doc.uri)


def _initialized(ls: TorchboltServer, state: LintState) -> None:
    state.pool.start()
    state.config_stamp = (("<never read>", -1),)  # force the first read
    refresh_config(ls, state)
    ls.index.add_listener(lambda paths: on_index_change(ls, state, paths))


# --------------------------------------------------------------------------------------------------
# Workspace diagnostics (pull)
# --------------------------------------------------------------------------------------------------
def workspace_reports(ls: TorchboltServer, state: LintState) -> list[types.WorkspaceFullDocumentDiagnosticReport]:
    """Full reports for every indexed workspace file (open documents use their editor text)."""
    project = lint_project(ls, state)
    open_docs = {ls.path_of(d.uri): d.snapshot() for d in list(ls.documents)}
    reports = []
    for path in sorted(set(ls.index.files()) | set(open_docs))[:MAX_WORKSPACE_FILES]:
        snap = open_docs.get(path)
        if snap is not None:
            text, version, uri = snap.text, snap.version, snap.uri
        else:
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError):
                continue
            version, uri = None, ls.uri_of(path)
        result = lint_source(text, path, project, state.config)
        if not result.parsed and snap is not None and (old := state.results.get(snap.uri)) is not None:
            items = old.diagnostics
        else:
            pos = Positions(text, ls.context.position_encoding)
            items = [to_diagnostic(f, pos) for f in result.findings if f.code != "TB001"]
        reports.append(types.WorkspaceFullDocumentDiagnosticReport(uri=uri, items=items, version=version))
    return reports


def lint_project(ls: TorchboltServer, state: LintState) -> Project:
    """A private copy of the workspace index for the rules (linting puts the linted text's facts into it)."""
    return Project.of_files(ls.index.files(), ls.context.root_paths, installed_sources(state.interpreter))


async def _other_documents_indexed(ls: TorchboltServer, uri: str, timeout: float = 2.0) -> None:
    """Let pending index updates of other open documents land, so a pull sees current cross-file facts.

    A pull client without refresh support only re-pulls on its own triggers; answering from facts that
    are a few milliseconds stale would leave a stale report on screen until the next edit.
    """
    pending = [t for u, t in list(getattr(ls, "_index_tasks", {}).items()) if u != uri and not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)


def register(server: TorchboltServer) -> None:
    state = LintState(extra=server.diagnostic_providers)  # the server's list: providers may register later
    server.lint_state = state
    server.diagnostics_changed.append(lambda uris: extra_changed(server, state, uris))
    server.document_listeners.append(lambda ls, event: on_document(ls, state, event))
    server.initialized_hooks.append(lambda ls: _initialized(ls, state))
    server.shutdown_hooks.append(lambda ls: state.pool.shutdown())

    @server.feature(types.TEXT_DOCUMENT_DIAGNOSTIC, types.DiagnosticOptions(
        identifier=SOURCE, inter_file_dependencies=True, workspace_diagnostics=True))
    async def document_diagnostic(ls: TorchboltServer, params: types.DocumentDiagnosticParams) -> Any:
        uri = params.text_document.uri
        if ls.document(uri) is None:
            return types.FullDocumentDiagnosticReport(items=[])
        await _other_documents_indexed(ls, uri)
        refresh_config(ls, state)
        linted = await ensure_linted(ls, state, uri)
        if linted is None:
            return types.FullDocumentDiagnosticReport(items=extra_diagnostics(state, uri) if extras_pulled(ls) else [])
        result_id = f"{linted.result_id}.{state.extra_generation}"
        if params.previous_result_id == result_id:
            return types.UnchangedDocumentDiagnosticReport(result_id=result_id)
        extra = extra_diagnostics(state, uri) if extras_pulled(ls) else []
        return types.FullDocumentDiagnosticReport(items=[*linted.diagnostics, *extra],
                                                  result_id=result_id)

    @server.feature(types.WORKSPACE_DIAGNOSTIC)
    async def workspace_diagnostic(ls: TorchboltServer, params: types.WorkspaceDiagnosticParams) -> Any:
        await ls.wait_index_ready()
        loop = asyncio.get_running_loop()
        items = await loop.run_in_executor(ls.thread_pool, workspace_reports, ls, state)
        return types.WorkspaceDiagnosticReport(items=items)


__all__ = ["DEBOUNCE_S", "SOURCE", "LintState", "Positions", "ensure_linted", "register", "to_diagnostic"]
