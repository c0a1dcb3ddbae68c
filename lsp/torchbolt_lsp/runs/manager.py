"""The server side of runs: start, watch, stop and remember training runs for one language server.

Flow of a run: a run command resolves settings and the target, checks statically that the module has
data, starts the child (`launcher`), and then the child's events arrive in chunks. Each chunk updates the
run's `RunRecord` and is appended to `.torchbolt/runs/<id>/events.jsonl` right away; everything the client
sees is coalesced and sent at most every PUBLISH_INTERVAL_S:

- `torchbolt/runEvent` notifications: one per event, in stream order, except that consecutive `progress`
  events within an interval are coalesced into the latest one (they are snapshots: the skipped ones
  carry nothing the latest lacks);
- `$/progress` reports (message "epoch 3/10 · step 120/400 · loss 0.231", percentage);
- `workspace/inlayHint/refresh` (or `workspace/codeLens/refresh` for clients without inlay hints) when
  metric values changed, at most every HINT_REFRESH_INTERVAL_S.

So a flood of thousands of events per second costs one batch validation per pipe chunk plus a handful of
LSP messages per interval, and the event loop stays free for completion requests.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import math
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from .._lazy import lazy_module
from . import format as fmt
from .artifacts import PrintedReport, lr_find_text, read_lr_find, read_profiler, summary_env
from .launcher import (
    ChildRun,
    WarmWorker,
    build_command,
    parse_python_traceback,
    start_child,
    start_worker,
    trainer_flag_value,
)
from .record import LR_FIND, RunRecord
from .settings import (
    LR_FIND_ARGS,
    RunSettings,
    SettingsError,
    load_pyproject,
    merge_settings,
    trainer_arg_line,
)
from .store import RunStore
from .targets import (
    Target,
    class_targets,
    missing_data_message,
    relative_target,
    script_calls,
)
from .tensorboard import TensorBoards, logdir_for
from .tracebacks import failure_diagnostics
from .trust import TrustStore

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer
    from torchbolt import events as ev
else:  # pydantic models: imported at the first run, not at server start
    ev = lazy_module("torchbolt.events")

log = logging.getLogger(__name__)

PUBLISH_INTERVAL_S = 0.1
HINT_REFRESH_INTERVAL_S = 0.5
SUMMARY_INTERVAL_S = 5.0
STDERR_TAIL_LINES = 400
#: Events / output lines held for the next publish at most (a flood between two publishes drops the oldest
#: notifications; the record and events.jsonl still get every event).
PENDING_LIMIT = 2000
OUTPUT_LIMIT = 2000
#: Seconds a client gets to answer window/showDocument before TensorBoard's URL is shown as a message.
SHOW_DOCUMENT_TIMEOUT_S = float(os.environ.get("TORCHBOLT_SHOW_DOCUMENT_TIMEOUT_S", "10"))
RUN_EVENT = "torchbolt/runEvent"
#: The run's state as the server knows it (from its RunRecord): what a client's status display renders,
#: sent when it changed (at most every PUBLISH_INTERVAL_S) and once more when the run has ended.
RUN_STATE = "torchbolt/runState"
SOURCE = "torchbolt run"


class RunCommandError(Exception):
    """A run command that cannot proceed; the message is shown to the user as is."""


class RunCancelled(RunCommandError):
    """The user answered Cancel to the trust prompt: nothing runs and nothing more is shown."""


#: The trust prompt's answers (clients without a trust UI of their own).
RUN_ONCE, TRUST_FOLDER, CANCEL = "Run once", "Trust this folder", "Cancel"


@dataclass
class ActiveRun:
    """A run whose child process is alive (or whose end is being processed)."""

    record: RunRecord
    target: Target
    folder: str
    child: ChildRun | None = None
    token: str | None = None
    events_file: Any = None
    pending: list[ev.Event] = field(default_factory=list)  # events not yet notified (progress coalesced)
    metrics_dirty: bool = False
    flush_handle: asyncio.TimerHandle | None = None
    stderr_tail: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)  # child output lines not yet logged
    last_summary: float = 0.0
    last_state: dict[str, Any] | None = None  # the runState last sent (sent again only when it changes)
    bad_lines: int = 0
    report: PrintedReport = field(default_factory=PrintedReport)  # a profiler report the child prints
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _plain(value: Any) -> Any:
    """Command arguments arrive as dicts or pygls attribute objects; normalise to dicts/lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_asdict"):
        return [_plain(v) for v in value]
    if hasattr(value, "_asdict"):
        items: dict[str, Any] = cast(Any, value)._asdict()
        return {str(k): _plain(v) for k, v in items.items() if k != "type" or v != "Object"}
    return value


def lr_find_flags(options: Any, configured: Mapping[str, Any] | None = None) -> list[str]:
    """A command's `lrFind` object (`{"num_training": 30}`) over the `[tool.torchbolt.run.lr_find]` settings,
    as `--lr_find.num_training 30` flags; unknown names are refused."""
    if options is not None and not isinstance(options, dict):
        raise RunCommandError("'lrFind' must be an object of Tuner.lr_find arguments, e.g. {\"num_training\": 50}")
    flags: list[str] = []
    for name, value in {**(configured or {}), **(options or {})}.items():
        if name not in LR_FIND_ARGS:
            raise RunCommandError(f"'lrFind' has no option {name!r} (allowed: {', '.join(LR_FIND_ARGS)})")
        flags += [f"--lr_find.{name}", trainer_flag_value(value)]
    return flags


def _default_metric(rec: RunRecord) -> str | None:
    """The metric a run is compared on when it monitors none: a validation loss first, then any
    validation metric, then any loss."""
    names = list(rec.latest)
    for parts in (("val", "loss"), ("val",), ("loss",)):
        found = next((n for n in names if all(p in n for p in parts)), None)
        if found:
            return found
    return names[0] if names else None


def _score(rec: RunRecord) -> float | None:
    """A run's value on its compared metric, lower is better (for keeping the best runs)."""
    name = rec.monitor or _default_metric(rec)
    if not name:
        return None
    value = rec.best_model_score if name == rec.monitor and rec.best_model_score is not None else rec.latest.get(name)
    if value is None or value != value:  # nan
        return None
    return value if rec.mode(name) == "min" else -value


def _run_alive(pid: int | None) -> bool:
    """Whether a stored run's process still exists (watched by another server on the same folder)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process reusing the pid
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"torchbolt" in f.read()
    except OSError:
        return True  # no /proc (macOS): trust the pid


def _on_rank(rec: RunRecord) -> str:
    """` on rank 1` when the failure came from a process of a multi-process run, else ''."""
    rank = (rec.failure or {}).get("rank")
    return f" on rank {rank}" if isinstance(rank, int) else ""


def _same_file(a: str, b: str) -> bool:
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


class RunManager:
    """Runs for one server: active children, the latest record per target, stored history, TensorBoards."""

    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.active: dict[str, ActiveRun] = {}
        self.records: dict[str, RunRecord] = {}  # latest run per target key
        self.history: dict[str, list[RunRecord]] = {}  # per workspace folder, oldest first
        self.failure_diags: dict[str, dict[str, list[types.Diagnostic]]] = {}  # key -> path -> diagnostics
        self.tensorboards = TensorBoards()
        self._loaded: set[str] = set()
        self.workers: dict[str, WarmWorker] = {}  # one warm worker per workspace folder
        self._warming: set[str] = set()
        # folder -> worker key of the last run the user started in this session: a worker is pre-started
        # only for a folder run explicitly before, with the very interpreter and env of that run
        self._explicit: dict[str, tuple[Any, ...]] = {}
        self._trusted_now: set[str] = set()  # folders trusted through the prompt in this session
        self._last_hint_refresh = 0.0
        self._refresh_handle: asyncio.TimerHandle | None = None
        self.diagnostics_listeners: list[Any] = []  # callables(paths) -> handled?, told when run diagnostics change
        # Children run in their own session (no SIGHUP when the editor dies): end them when the server ends.
        atexit.register(self.shutdown)

    def _spawn(self, coro: Any) -> Any:
        """Background work through the server's spawn() (referenced, failures logged)."""
        spawn = getattr(self.server, "spawn", None)
        return spawn(coro) if spawn is not None else asyncio.ensure_future(coro)

    # ------------------------------------------------------------------------------------------------
    # server facts
    # ------------------------------------------------------------------------------------------------
    @property
    def context(self) -> Any:
        return getattr(self.server, "context", None)

    def folder_trusted(self, folder: str) -> bool:
        """Whether runs may start in `folder` without asking: the editor's `trusted` initialization option
        when it gave one, else a "Trust this folder" answer (this session or the per-user trust store)."""
        ctx = self.context
        if getattr(ctx, "trust_given", False) or getattr(ctx, "trusted", False):
            return bool(getattr(ctx, "trusted", False))
        return folder in self._trusted_now or TrustStore().is_trusted(folder)

    async def ensure_trusted(self, folder: str, what: str) -> None:
        """Return when `what` may run in `folder`; ask the user first in clients without a trust UI.

        Raises RunCommandError when the editor said the workspace is untrusted or cannot ask, and
        RunCancelled when the user declined.
        """
        if self.folder_trusted(folder):
            return
        if getattr(self.context, "trust_given", False):
            raise RunCommandError("this workspace is not trusted: torchbolt does not run its code. Trust the "
                                  "workspace in the editor to enable Fit / Validate / Test.")
        message = (f"torchbolt: {what} runs code of {folder} (its Python files and the interpreter its "
                   "pyproject.toml names). Run it?")
        try:
            choice = await self.server.window_show_message_request_async(types.ShowMessageRequestParams(
                type=types.MessageType.Warning, message=message,
                actions=[types.MessageActionItem(title=t) for t in (RUN_ONCE, TRUST_FOLDER, CANCEL)]))
        except Exception as exc:
            log.info("the trust prompt failed: %s", exc)
            raise RunCommandError(f"{folder} is not trusted and the editor could not ask ({exc}). Pass "
                                  "initializationOptions {\"trusted\": true}, or add the folder to "
                                  f"{TrustStore().path}") from None
        title = getattr(choice, "title", None)
        if title == TRUST_FOLDER:
            self._trusted_now.add(folder)
            try:
                TrustStore().add(folder)
            except OSError as exc:  # trusted for this session anyway
                self._show(types.MessageType.Warning, f"cannot remember the trusted folder in "
                                                      f"{TrustStore().path}: {exc}")
            return
        if title == RUN_ONCE:
            return
        raise RunCancelled(f"{what} cancelled: {folder} is not trusted")

    def roots(self) -> list[str]:
        ctx = self.context
        roots = list(getattr(ctx, "root_paths", ()) or ())
        if not roots:
            ws = getattr(self.server, "workspace", None)
            root = getattr(ws, "root_path", None) if ws is not None else None
            roots = [root] if root else []
        return [os.path.abspath(r) for r in roots]

    def folder_for(self, path: str) -> str:
        """The workspace folder holding `path` (the deepest one), else the file's own folder."""
        path = os.path.abspath(path)
        best = ""
        for root in self.roots():
            if (path == root or path.startswith(root.rstrip(os.sep) + os.sep)) and len(root) > len(best):
                best = root
        return best or os.path.dirname(path)

    def _index(self) -> Any:
        return getattr(self.server, "index", None)

    def _source(self, uri: str) -> str:
        try:
            return self.server.workspace.get_text_document(uri).source
        except Exception:
            path = to_fs_path(uri)
            if path and os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    return f.read()
            raise RunCommandError(f"cannot read {uri}: open the file in the editor or save it") from None

    def _facts(self, uri: str, text: str | None) -> tuple[str, Any, bool] | None:
        """(path, file facts, whether they are the index's own) of a document.

        An open document's facts are the workspace index's, brought up to the document's version (so
        keyed by version: an unchanged document is never parsed again, and after an edit burst only the
        newest text is); other text is parsed here.
        """
        path = to_fs_path(uri)
        if not path:
            return None
        server = self.server
        doc = server.document(uri) if hasattr(server, "document") else None
        index = self._index()
        if doc is not None and (text is None or text == doc.text) and index is not None:
            server.ensure_indexed(doc)
            facts = index.get(path)
            if facts is not None and server.indexed_version(uri) == doc.version:
                return path, facts, True
            text = doc.text
        from ..analysis.facts import extract_facts
        from ..document import parse_ast

        text = self._source(uri) if text is None else text
        encoding = getattr(self.context, "position_encoding", "utf-16")
        return path, extract_facts(parse_ast(text), text, path, encoding=encoding), False

    def file_targets(self, uri: str, text: str | None = None) -> list[Target]:
        """Runnable targets in a document: Lightning classes, then script calls outside of them."""
        found = self._facts(uri, text)
        if found is None:
            return []
        path, facts, indexed = found
        index = self._index()
        # facts the index does not hold yet get an index of their own (a class typed since the last update)
        own = None if indexed and index is not None else self._own_index(path, facts)

        def kind(cls: Any) -> str | None:
            found: str | None = index.class_kind(path, cls.name) if index is not None else None
            return found or (own.class_kind(path, cls.name) if own is not None else None)

        classes = class_targets(facts, kind)
        class_lines = [(c.def_span.line, c.def_span.end_line) for c in facts.classes]
        calls = [t for t in script_calls(facts) if not any(a <= t.line <= b for a, b in class_lines)]
        return classes + calls

    @staticmethod
    def _own_index(path: str, facts: Any) -> Any:
        """An index of one document's current facts (for classes the workspace index has not seen yet)."""
        from ..workspace_index import WorkspaceIndex

        return WorkspaceIndex.of_files({path: facts}, installed=None)

    def _methods(self, path: str, class_name: str, uri: str) -> set[str] | None:
        """Methods of a class and its bases (the workspace index's resolution); None when some base cannot be
        followed (a class from an installed package may define the dataloaders: the static check then stays
        silent)."""
        found = self._facts(uri, None)
        if found is None:
            return None
        _, facts, _ = found
        index = self._index()
        res = index.resolved(path, class_name) if index is not None else None
        if res is None or res.kind is None:
            res = self._own_index(path, facts).resolved(path, class_name)
        return set(res.methods) if res.complete else None

    # ------------------------------------------------------------------------------------------------
    # history
    # ------------------------------------------------------------------------------------------------
    def ensure_loaded(self, folder: str) -> None:
        """Load stored runs of a workspace folder once (after a restart, hints show the last run again)."""
        if folder in self._loaded:
            return
        self._loaded.add(folder)
        store = RunStore(folder)
        stored = store.load_all()
        for rec in stored:
            # still "running" on disk: its server died (its child ended with it) unless the process is there
            if rec.active and not _run_alive(rec.pid) and rec.mark_abandoned():
                try:
                    store.write_summary(rec)
                except OSError as exc:
                    log.warning("cannot fix the stale run summary %s: %s", rec.run_id, exc)
        self.history.setdefault(folder, [])[:0] = stored
        for rec in stored:
            self.records[rec.key] = rec

    def records_for_path(self, path: str) -> list[RunRecord]:
        """Latest records whose target lives in `path`; else the latest run of the folder (for files that
        only reference metrics, such as a callback's monitor=)."""
        folder = self.folder_for(path)
        self.ensure_loaded(folder)
        mine = [r for k, r in self.records.items() if _same_file(k.rsplit("::", 1)[0], path)]
        if mine:
            return sorted(mine, key=lambda r: r.started_at, reverse=True)
        runs = self.history.get(folder) or []
        return [runs[-1]] if runs else []

    def metric_record(self, path: str, name: str) -> RunRecord | None:
        """The most recent run (of this file's targets, else the folder) that reported metric `name`."""
        for rec in self.records_for_path(path):
            if name in rec.history or name in rec.latest:
                return rec
        folder = self.folder_for(path)
        for rec in reversed(self.history.get(folder) or []):
            if name in rec.history or name in rec.latest:
                return rec
        return None

    def lr_find_record(self, path: str, class_name: str) -> RunRecord | None:
        """The latest finished Find LR run of `class_name` in `path` that left a result, else None."""
        folder = self.folder_for(path)
        self.ensure_loaded(folder)
        for rec in reversed(self.history.get(folder) or []):
            if rec.fn == LR_FIND and rec.lr_find is not None and rec.label == class_name \
                    and _same_file(rec.key.rsplit("::", 1)[0], path):
                return rec
        return None

    def latest_record(self, path: str, class_name: str, want: str | None = None) -> RunRecord | None:
        """The latest run of a class (`want="profiler"`: the latest one that was profiled)."""
        folder = self.folder_for(path)
        self.ensure_loaded(folder)
        for rec in reversed(self.history.get(folder) or []):
            if rec.label == class_name and _same_file(rec.key.rsplit("::", 1)[0], path) \
                    and (want is None or getattr(rec, want, None) is not None):
                return rec
        return None

    # ------------------------------------------------------------------------------------------------
    # settings
    # ------------------------------------------------------------------------------------------------
    def settings_for(self, folder: str, overrides: dict[str, Any] | None) -> RunSettings:
        settings = load_pyproject(folder)
        ctx_run = getattr(getattr(self.context, "settings", None), "run", None)
        if ctx_run is not None:
            layer = {"interpreter": getattr(ctx_run, "interpreter", None),
                     "trainer": dict(getattr(ctx_run, "trainer", {}) or {})}
            for extra in ("data", "env"):
                if getattr(ctx_run, extra, None):
                    layer[extra] = getattr(ctx_run, extra)
            settings = merge_settings(settings, layer, "editor settings (run)")
        if overrides:
            trainer = {k: v for k, v in overrides.items() if k not in ("data", "interpreter", "env", "trainer")}
            layer = {"trainer": {**trainer, **(overrides.get("trainer") or {})}}
            for extra in ("data", "interpreter", "env"):
                if extra in overrides:
                    layer[extra] = overrides[extra]
            settings = merge_settings(settings, layer, "command overrides")
        return settings

    # ------------------------------------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------------------------------------
    def resolve_target(self, args: dict[str, Any], kinds: tuple[str, ...] = ("module", "datamodule", "script"),
                       ) -> Target:
        uri = args.get("uri")
        if not isinstance(uri, str) or not uri:
            raise RunCommandError("the command needs an argument object with 'uri' (and 'className' or 'position')")
        targets = [t for t in self.file_targets(uri) if t.kind in kinds]
        class_name = args.get("className")
        if class_name:
            for t in targets:
                if t.name == class_name:
                    return t
            names = ", ".join(t.name for t in targets) or "none"
            raise RunCommandError(f"no LightningModule or LightningDataModule named {class_name!r} in "
                                  f"{os.path.basename(to_fs_path(uri) or uri)} (found: {names})")
        position = args.get("position")
        if isinstance(position, dict) and "line" in position:
            line = int(position["line"])
            above = [t for t in targets if t.line <= line]
            if above:
                return max(above, key=lambda t: t.line)
        modules = [t for t in targets if t.kind == "module"]
        if len(modules) == 1:
            return modules[0]
        if not targets:
            raise RunCommandError(f"{os.path.basename(to_fs_path(uri) or uri)} defines no LightningModule to run")
        raise RunCommandError("several runnable classes in this file: pass 'className' or a 'position' inside one")

    def _module_for_datamodule(self, dm: Target, uri: str) -> Target:
        """The LightningModule a DataModule's lens runs: the only one in its file, else in the workspace."""
        same_file = [t for t in self.file_targets(uri) if t.kind == "module"]
        if len(same_file) == 1:
            return same_file[0]
        index = self._index()
        candidates: list[Target] = []
        if not same_file and index is not None and hasattr(index, "lightning_classes"):
            for path, cls, kind in index.lightning_classes():
                if kind == "module":
                    candidates.append(Target("module", cls.name, path, cls.span.line, cls.span.col, cls.span.end_col))
        if len(candidates) == 1:
            return candidates[0]
        names = ", ".join(sorted(t.name for t in (same_file or candidates))) or "none found"
        raise RunCommandError(f"which LightningModule should train on {dm.name}? ({names}) Use the Fit lens of "
                              f"the module and set data = \"{os.path.basename(dm.path)}::{dm.name}\" under "
                              "[tool.torchbolt.run] in pyproject.toml")

    # ------------------------------------------------------------------------------------------------
    # warm workers
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _worker_key(settings: RunSettings, folder: str) -> tuple[Any, ...]:
        """What a worker is interchangeable on: the interpreter file itself (path, inode, size, mtime: an
        edited script is another interpreter), the folder and the environment."""
        interpreter = settings.resolved_interpreter(folder)
        found = interpreter if os.sep in interpreter else (shutil.which(interpreter) or interpreter)
        try:
            st = os.stat(found)
            identity: tuple[Any, ...] = (os.path.realpath(found), st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            identity = (interpreter,)
        return (interpreter, identity, folder, tuple(sorted(settings.env.items())))

    def prewarm(self, folder: str) -> None:
        """Start a warm worker for the folder's next run, when trusted, enabled, idle and not already there.

        The worker imports torch and torchbolt with the configured interpreter (never workspace code) so that
        the next run starts without that cost. Only after the user started a run of this folder in this
        session, and only while the interpreter and env are exactly those of that run: opening a file or
        showing lenses never starts a configured interpreter. Never while a run of the folder is active,
        so it does not compete with training for CPU.
        """
        explicit = self._explicit.get(folder)
        if explicit is None or folder in self._warming or not self.folder_trusted(folder):
            return
        if any(r.folder == folder for r in self.active.values()):
            return
        try:
            settings = self.settings_for(folder, None)
        except SettingsError:
            return
        if not settings.prewarm:
            return
        key = self._worker_key(settings, folder)
        if key != explicit:  # settings or the interpreter changed since the user's run: wait for the next one
            return
        current = self.workers.get(folder)
        if current is not None:
            if current.key == key and not current.claimed and current.child.proc.returncode is None:
                return
            current.discard()
            del self.workers[folder]
        self._warming.add(folder)
        env = {**os.environ, **settings.env, "PYTHONUNBUFFERED": "1"}
        self._spawn(self._start_worker(folder, key, settings.resolved_interpreter(folder), env))

    async def _start_worker(self, folder: str, key: tuple[Any, ...], interpreter: str, env: dict[str, str]) -> None:
        try:
            worker = await start_worker(key, interpreter, folder, env)
            self.workers[folder] = worker
            exited = asyncio.ensure_future(worker.child.proc.wait())
            await asyncio.wait([worker.router.ready, exited], timeout=300, return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            if worker.ready:
                self._log(types.MessageType.Info, f"warm run worker ready for {folder} (pid {worker.child.pid})")
            else:  # it died (a broken interpreter) or hangs: no worker, the next run starts cold
                if self.workers.get(folder) is worker:
                    del self.workers[folder]
                tail = "; ".join(ln for _, ln in worker.router.early[-3:])
                how = "exited" if worker.child.proc.returncode is not None else "was not ready in 300 s"
                worker.discard()
                self._log(types.MessageType.Info, f"no warm run worker for {folder}: it {how} ({tail})")
        except OSError as exc:
            log.info("no warm worker for %s: %s", folder, exc)
        finally:
            self._warming.discard(folder)

    async def start(self, fn: str, raw_args: Any) -> dict[str, Any]:
        """Start `fn` (fit/validate/test) for the target the arguments name; returns {runId, ...}."""
        args = _plain(raw_args) or {}
        if not isinstance(args, dict):
            raise RunCommandError("the command argument must be an object {uri, position?, className?, overrides?}")
        target = self.resolve_target(args, ("module",) if fn == LR_FIND else ("module", "datamodule", "script"))
        data_override: str | None = None
        if target.kind == "datamodule":
            data_override = relative_target(target.path, target.name, self.folder_for(target.path))
            target = self._module_for_datamodule(target, args["uri"])
        existing = self.active.get(target.key)
        if existing is not None:
            raise RunCommandError(f"{existing.record.fn} of {target.name} is already running (run "
                                  f"{existing.record.run_id}); stop it first")
        folder = self.folder_for(target.path)
        await self.ensure_trusted(folder, f"{fmt.fn_title(fn)} {target.name}")
        self.ensure_loaded(folder)
        overrides = args.get("overrides") if isinstance(args.get("overrides"), dict) else None
        if data_override is not None:
            overrides = {**(overrides or {}), "data": data_override}
        try:
            settings = self.settings_for(folder, overrides)
        except SettingsError as exc:
            raise RunCommandError(str(exc)) from None
        uri = args["uri"]
        if target.kind == "module":
            methods = self._methods(target.path, target.name, uri)
            if methods is not None:
                problem = missing_data_message(target.name, methods, "fit" if fn == LR_FIND else fn, settings.data,
                                               os.path.relpath(target.path, folder))
                if problem:
                    raise RunCommandError(problem)
        run_id = ev.new_run_id()
        interpreter = settings.resolved_interpreter(folder)
        if target.kind == "script":
            cmd = [interpreter, "-m", "torchbolt", "run", target.path]  # Lightning imports resolve to torchbolt
        else:
            cmd = build_command(interpreter, "lr-find" if fn == LR_FIND else fn,
                                relative_target(target.path, target.name, folder), settings.data, settings.trainer)
            if fn == LR_FIND:
                cmd[-2:-2] = lr_find_flags(args.get("lrFind"), settings.lr_find)
        record = RunRecord(run_id=run_id, key=target.key, fn=fn if target.kind != "script" else target.fn or fn,
                           uri=from_fs_path(target.path) or uri, label=target.name, command=list(cmd))
        run = ActiveRun(record=record, target=target, folder=folder)
        self.active[target.key] = run
        self.records[target.key] = record
        self.history.setdefault(folder, []).append(record)
        self._clear_failure(target.key)
        store = RunStore(folder)
        # the runtime writes its LR-find and profiler summaries into the run's folder (runs/artifacts.py)
        artifacts_env = summary_env(store.run_dir(run_id))
        env = {**os.environ, **settings.env, "TORCHBOLT_RUN_ID": run_id, "PYTHONUNBUFFERED": "1", **artifacts_env}
        if target.kind == "script":
            env["TORCHBOLT_EVENTS"] = "fd:{fd}"
        worker = self.workers.get(folder)
        worker_key = self._worker_key(settings, folder)
        self._explicit[folder] = worker_key
        warm = (target.kind != "script" and worker is not None and worker.ready and worker.key == worker_key)
        try:
            run.events_file = store.open_events(run_id)
            await self._begin_progress(run)

            def on_events(raw: list[bytes], good: list[ev.Event], bad: list[tuple[bytes, ev.EventError]]) -> None:
                self._on_events(run, raw, good, bad)

            def on_output(name: str, lines: list[str]) -> None:
                self._on_output(run, name, lines)

            if warm and worker is not None:
                del self.workers[folder]
                try:
                    run.child = worker.claim(cmd[3:], {"TORCHBOLT_RUN_ID": run_id, **artifacts_env},
                                             on_events, on_output)
                except OSError:  # the worker died after it said ready: start the usual way
                    worker.discard()
                    warm = False
            if not warm:
                run.child = await start_child(cmd, folder, env, on_events, on_output)
        except (OSError, ValueError) as exc:
            self.active.pop(target.key, None)
            record.status = "failed"
            record.failure = {"error_type": type(exc).__name__, "message": str(exc), "frames": []}
            self._end_progress(run, f"could not start: {exc}")
            if run.events_file is not None:
                run.events_file.close()
            store.write_summary(record)
            raise RunCommandError(f"could not start {interpreter}: {exc}. Set the run interpreter "
                                  "([tool.torchbolt.run] interpreter, or the editor's run.interpreter setting)"
                                  ) from None
        assert run.child is not None
        record.pid = run.child.pid
        self._save(run)  # on disk as running from the start: a server killed now leaves a record to fix
        self._send_state(run)
        self._log(types.MessageType.Info, f"[{run_id}] {' '.join(cmd)}  (in {folder})")
        self._spawn(self._watch(run))
        self.refresh_lenses()
        assert run.child is not None
        return {"runId": run_id, "pid": run.child.pid, "target": target.key, "command": cmd, "warm": warm}

    def stop(self, raw_args: Any) -> dict[str, Any]:
        """Stop the active run named by runId, or the active run of the target at uri/className/position.

        A stale Stop (a lens or button left over from a run that has ended) changes nothing and says so.
        """
        args = _plain(raw_args) or {}
        run = None
        key: str | None = None
        run_id = args.get("runId") if isinstance(args, dict) else None
        if run_id:
            run = next((r for r in self.active.values() if r.record.run_id == run_id), None)
        elif isinstance(args, dict) and args.get("uri"):
            try:
                key = self.resolve_target(args).key
            except RunCommandError:
                key = None
            run = self.active.get(key) if key else None
            if run is None:  # any run started from this file
                path = to_fs_path(args["uri"]) or ""
                run = next((r for r in self.active.values() if _same_file(r.target.path, path)), None)
        if run is None:
            ended = next((r for rs in self.history.values() for r in rs if r.run_id == run_id), None) if run_id \
                else self.records.get(key) if key else None
            message = (f"{fmt.fn_title(ended.fn)} {ended.label} is not running (it ended: {ended.status}); "
                       "nothing to stop") if ended is not None else "no run is active here; nothing to stop"
            self._show(types.MessageType.Info, message)
            return {"stopped": False, "message": message}
        self._request_stop(run)
        return {"stopped": True, "runId": run.record.run_id}

    def _request_stop(self, run: ActiveRun) -> None:
        if run.child is not None:
            run.record.status = "stopping" if run.record.active else run.record.status
            run.child.stop()

    def list_runs(self, raw_args: Any) -> dict[str, Any]:
        """Past and active runs of the workspace (newest first), each compared with the previous run of the
        same target on its monitored metric (or `metric` when given)."""
        args = _plain(raw_args) or {}
        args = args if isinstance(args, dict) else {}
        metric = args.get("metric")
        uri = args.get("uri")
        folders = [self.folder_for(to_fs_path(uri) or "")] if uri else self.roots()
        rows = []
        for folder in folders:
            self.ensure_loaded(folder)
            runs = self.history.get(folder, [])
            previous: dict[str, RunRecord] = {}
            for rec in runs:
                name = metric or rec.monitor or _default_metric(rec)
                row: dict[str, Any] = {"runId": rec.run_id, "target": rec.key, "label": rec.label, "fn": rec.fn,
                       "status": rec.status, "startedAt": rec.started_at, "durationS": rec.duration_s,
                       "epochs": rec.epochs, "globalStep": rec.global_step, "bestModelPath": rec.best_model_path,
                       "logDir": rec.log_dir, "metric": name, "value": rec.latest.get(name) if name else None,
                       "hardware": rec.hardware}
                prev = previous.get(rec.key)
                if prev is not None and name:
                    row["previousRunId"] = prev.run_id
                    row["previousValue"] = prev.latest.get(name)
                    if row["value"] is not None and row["previousValue"] is not None:
                        row["change"] = row["value"] - row["previousValue"]
                        better = (row["change"] < 0) == (rec.mode(name) == "min")
                        row["comparison"] = (f"{name} {fmt.format_value(row['previousValue'])} → "
                                             f"{fmt.format_value(row['value'])} "
                                             f"({'better' if better and row['change'] else 'worse' if row['change'] else 'same'})")
                previous[rec.key] = rec
                rows.append(row)
        rows.sort(key=lambda r: r["startedAt"], reverse=True)
        workers = {folder: "starting" for folder in self._warming}
        workers.update({folder: ("ready" if w.ready else "starting") for folder, w in self.workers.items()})
        return {"runs": rows, "workers": workers}

    async def open_tensorboard(self, raw_args: Any) -> dict[str, Any]:
        """Start (or reuse) the workspace's TensorBoard and ask the client to open it."""
        args = _plain(raw_args) or {}
        args = args if isinstance(args, dict) else {}
        uri = args.get("uri")
        path = to_fs_path(uri) if isinstance(uri, str) else None
        folder = self.folder_for(path) if path else (self.roots() or [os.getcwd()])[0]
        await self.ensure_trusted(folder, "TensorBoard")
        self.ensure_loaded(folder)
        settings = self.settings_for(folder, None)
        logdir = logdir_for([r.log_dir for r in self.history.get(folder, [])], folder)
        try:
            tb = await self.tensorboards.ensure(folder, settings.resolved_interpreter(folder), logdir,
                                                {**os.environ, **settings.env})
        except RuntimeError as exc:
            raise RunCommandError(str(exc)) from None
        shown = False
        if getattr(self.context, "show_document", False):
            try:
                # An off-spec reply (or none at all) must not hang the command: bounded wait, then a message.
                reply = await asyncio.wait_for(self.server.window_show_document_async(
                    types.ShowDocumentParams(uri=tb.url, external=True)), SHOW_DOCUMENT_TIMEOUT_S)
                shown = bool(getattr(reply, "success", False))
            except (Exception, asyncio.TimeoutError) as exc:  # the URL still goes in the result and a message
                log.info("showDocument failed: %r", exc)
        self._log(types.MessageType.Info, f"TensorBoard for {folder}: {tb.url} (logdir {tb.logdir})")
        if not shown:
            self._show(types.MessageType.Info, f"TensorBoard is running at {tb.url} (logdir {tb.logdir})")
        return {"url": tb.url, "logdir": tb.logdir, "shown": shown}

    def shutdown(self) -> None:
        """Stop children and TensorBoards (server shutdown, and process exit without a shutdown request)."""
        for run in list(self.active.values()):
            if run.child is not None:
                try:
                    run.child.kill()
                except Exception:  # at interpreter exit the loop may be gone; the process is what matters
                    log.debug("could not kill run %s", run.record.run_id, exc_info=True)
            if run.events_file is not None and not run.events_file.closed:
                run.events_file.close()  # what was received is kept
            run.record.status = "interrupted" if run.record.active else run.record.status
            self._save(run)
        for worker in list(self.workers.values()):
            try:
                worker.discard()
            except Exception:
                log.debug("could not end a warm worker", exc_info=True)
        self.workers.clear()
        self.tensorboards.stop_all()

    # ------------------------------------------------------------------------------------------------
    # the event stream
    # ------------------------------------------------------------------------------------------------
    def _on_events(self, run: ActiveRun, raw: list[bytes], good: list[ev.Event],
                   bad: list[tuple[bytes, ev.EventError]]) -> None:
        if run.events_file is not None:
            run.events_file.write(b"\n".join(raw) + b"\n")
        for event in good:
            run.record.apply(event)
            if isinstance(event, ev.Progress) and run.pending and isinstance(run.pending[-1], ev.Progress):
                run.pending[-1] = event  # consecutive progress snapshots: only the latest is worth sending
            else:
                run.pending.append(event)
                if isinstance(event, (ev.Metrics, ev.ValidationEnd, ev.Finished)):
                    run.metrics_dirty = True
        if len(run.pending) > PENDING_LIMIT:
            del run.pending[:-PENDING_LIMIT]
        if bad:
            run.bad_lines += len(bad)
            if run.bad_lines == len(bad):  # log the first problem only: a broken stream repeats itself
                self._log(types.MessageType.Warning, f"[{run.record.run_id}] ignored event line: {bad[0][1]}")
        self._schedule_flush(run)

    def _on_output(self, run: ActiveRun, name: str, lines: list[str]) -> None:
        if name == "stderr":
            run.stderr_tail.extend(lines)
            del run.stderr_tail[:-STDERR_TAIL_LINES]
        else:
            run.report.feed(lines)
        run.output.extend(lines)
        del run.output[:-OUTPUT_LIMIT]
        self._schedule_flush(run)

    def _schedule_flush(self, run: ActiveRun) -> None:
        if run.flush_handle is None:
            run.flush_handle = asyncio.get_running_loop().call_later(PUBLISH_INTERVAL_S, self._flush, run)

    def _flush(self, run: ActiveRun) -> None:
        run.flush_handle = None
        rec = run.record
        if run.output:
            text = "\n".join(run.output)
            run.output.clear()
            self._log(types.MessageType.Log, f"[{rec.label}] {text}")
        params_base = {"runId": rec.run_id, "uri": rec.uri, "target": rec.key}
        for event in run.pending:
            self.server.protocol.notify(RUN_EVENT, {**params_base, "event": event.model_dump(mode="json")})
        run.pending.clear()
        if run.token is not None and rec.active:
            self.server.work_done_progress.report(run.token, types.WorkDoneProgressReport(
                message=self._progress_message(rec), cancellable=True, percentage=self._percentage(rec)))
        self._send_state(run)
        if run.metrics_dirty:
            run.metrics_dirty = False
            self.refresh_hints()
        now = time.monotonic()
        if now - run.last_summary > SUMMARY_INTERVAL_S:
            run.last_summary = now
            self._save(run)

    @staticmethod
    def _percentage(rec: RunRecord) -> int | None:
        if rec.fn in ("fit", LR_FIND):
            return fmt.progress_percentage(rec.epoch, rec.max_epochs, rec.batch, rec.total, rec.global_step,
                                           rec.max_steps)
        return fmt.progress_percentage(0, 1, rec.batch, rec.total)  # one pass over the evaluation data

    def run_state(self, rec: RunRecord) -> dict[str, Any]:
        """The `torchbolt/runState` payload of a run: its record, flattened for a status display."""
        metrics = {k: v for k, v in {**rec.latest, **rec.progress_metrics}.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)}  # JSON has no nan / inf
        failure = rec.failure or {}
        error = ": ".join(str(x) for x in (failure.get("error_type"), failure.get("message")) if x) or None
        return {
            "runId": rec.run_id, "uri": rec.uri, "target": rec.key, "label": rec.label, "fn": rec.fn,
            "status": rec.status, "active": rec.active, "stage": rec.stage, "epoch": rec.epoch,
            "maxEpochs": rec.max_epochs, "batch": rec.batch, "total": rec.total, "globalStep": rec.global_step,
            "metrics": metrics, "percentage": self._percentage(rec) if rec.active else None,
            "message": self._progress_message(rec) if rec.active else self._outcome(rec),
            "startedAt": rec.started_at, "durationS": rec.duration_s, "logDir": rec.log_dir,
            "bestModelPath": rec.best_model_path, "error": error if rec.status == "failed" else None,
            "hardware": rec.hardware, "worldSize": rec.world_size,
        }

    def _send_state(self, run: ActiveRun) -> None:
        state = self.run_state(run.record)
        if state != run.last_state:
            run.last_state = state
            self.server.protocol.notify(RUN_STATE, state)

    @staticmethod
    def _progress_message(rec: RunRecord) -> str:
        metrics = dict(rec.progress_metrics)
        if not metrics:
            metrics = {k: v for k, v in rec.latest.items() if "loss" in k}
        message = fmt.progress_message(rec.epoch, rec.max_epochs, rec.batch, rec.total, metrics, rec.stage)
        if not message and rec.hardware:  # run_started arrived, no step yet: say where it runs
            return f"starting on {rec.hardware}"
        return message

    def refresh_hints(self, force: bool = False) -> None:
        """Ask the client to re-pull inlay hints (or code lenses without inlay-hint support), rate-limited."""
        now = time.monotonic()
        wait = HINT_REFRESH_INTERVAL_S - (now - self._last_hint_refresh)
        if wait > 0 and not force:
            if self._refresh_handle is None:
                self._refresh_handle = asyncio.get_running_loop().call_later(wait, self._do_refresh)
            return
        self._do_refresh()

    def refresh_lenses(self) -> None:
        """Ask the client to re-pull code lenses: "Stop" appears while a target runs and goes when it ends."""
        if getattr(self.context, "code_lens_refresh", False):
            self._spawn(self._send_refresh("lens"))

    def _do_refresh(self) -> None:
        self._refresh_handle = None
        self._last_hint_refresh = time.monotonic()
        ctx = self.context
        if getattr(ctx, "inlay_hints", False):
            if getattr(ctx, "inlay_hint_refresh", False):
                self._spawn(self._send_refresh("inlay"))
        elif getattr(ctx, "code_lens_refresh", False):
            self._spawn(self._send_refresh("lens"))

    async def _send_refresh(self, what: str) -> None:
        try:
            if what == "inlay":
                await self.server.workspace_inlay_hint_refresh_async(None)
            else:
                await self.server.workspace_code_lens_refresh_async(None)
        except Exception as exc:  # a client that errors on refresh still gets fresh values on the next pull
            log.debug("refresh %s failed: %s", what, exc)

    # ------------------------------------------------------------------------------------------------
    # progress and the end of a run
    # ------------------------------------------------------------------------------------------------
    async def _begin_progress(self, run: ActiveRun) -> None:
        # A client that renders runState in a status item of its own (the VS Code extension) gets no second,
        # work-done progress item for the same run.
        if not getattr(self.context, "work_done_progress", False) or getattr(self.context, "run_status_item", False):
            return
        token = f"torchbolt-run-{run.record.run_id}-{uuid.uuid4().hex[:6]}"
        try:
            await self.server.work_done_progress.create_async(token)
        except Exception as exc:
            log.info("work done progress refused: %s", exc)
            return
        run.token = token
        title = f"{fmt.fn_title(run.record.fn)} {run.record.label}"
        self.server.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title=title, message="starting", percentage=0, cancellable=True))
        future = self.server.work_done_progress.tokens.get(token)
        if future is not None:
            # window/workDoneProgress/cancel cancels this future: stop the run gracefully
            future.add_done_callback(lambda f: self._request_stop(run) if f.cancelled() and run.record.active else None)

    def _end_progress(self, run: ActiveRun, message: str) -> None:
        if run.token is not None:
            self.server.work_done_progress.end(run.token, types.WorkDoneProgressEnd(message=message))
            run.token = None

    async def _watch(self, run: ActiveRun) -> None:
        assert run.child is not None
        try:
            code = await run.child.wait()
        except Exception as exc:  # never leave a run marked active
            log.exception("watching run %s failed", run.record.run_id)
            code = -1
            run.stderr_tail.append(f"server error while watching the run: {exc}")
        if run.flush_handle is not None:
            run.flush_handle.cancel()
        rec = run.record
        rec.returncode = code
        if rec.active:  # no terminal event arrived: build one from the exit status and stderr
            self._synthesize_end(run, code)
        self._collect_artifacts(run)
        self._flush(run)
        if run.events_file is not None:
            run.events_file.close()
        if self.active.get(run.target.key) is run:
            del self.active[run.target.key]
        if rec.ended_at is None:
            rec.ended_at = time.time()
        self._save(run)
        self.prune(run.folder)
        outcome = self._outcome(rec)
        if rec.status == "failed":  # diagnostics first: when the progress ends, they are in place
            self._publish_failure(run)
        self._end_progress(run, outcome)
        self._send_state(run)  # the final state: no client keeps showing a stale epoch
        self.refresh_hints(force=True)
        self.refresh_lenses()
        if rec.status == "failed":
            self._show(types.MessageType.Error, f"{fmt.fn_title(rec.fn)} {rec.label} failed{_on_rank(rec)}: "
                                                f"{(rec.failure or {}).get('error_type', 'error')}: "
                                                f"{(rec.failure or {}).get('message', '')}".rstrip(": "))
        elif rec.status in ("success", "interrupted"):
            self._spawn(self._announce(rec, outcome, run.folder))
        run.done.set()
        self.prewarm(run.folder)  # the next run of this folder starts warm

    def _collect_artifacts(self, run: ActiveRun) -> None:
        """Read the summaries the child wrote beside the run (its LR-find result, its profiler's actions)."""
        run_dir = RunStore(run.folder).run_dir(run.record.run_id)
        try:
            run.record.lr_find = read_lr_find(run_dir) or run.record.lr_find
            run.record.profiler = read_profiler(run_dir) or run.record.profiler
            if run.record.profiler is not None:
                run.report.keep(run.record.profiler, run_dir)
        except Exception:  # a bad file must not keep the run from ending
            log.exception("reading the artifacts of run %s failed", run.record.run_id)
        if run.record.lr_find is not None or run.record.profiler is not None:
            run.metrics_dirty = True  # the lr hint and the hover change: refresh

    def _synthesize_end(self, run: ActiveRun, code: int) -> None:
        rec = run.record
        if run.child is not None and run.child.stop_requested and code in (0, 130, -2, 143, -15, -9):
            rec.apply(ev.Finished(run_id=rec.run_id, status="interrupted", epochs=rec.epoch or 0,
                                  global_step=rec.global_step, duration_s=round(time.time() - rec.started_at, 3)))
            return
        if code == 0:
            rec.apply(ev.Finished(run_id=rec.run_id, status="success", epochs=rec.epoch or 0,
                                  global_step=rec.global_step, duration_s=round(time.time() - rec.started_at, 3)))
            return
        parsed = parse_python_traceback("\n".join(run.stderr_tail))
        if parsed is not None:
            frames, error_type, message = parsed
            failed = ev.Failed(run_id=rec.run_id, error_type=error_type, message=message or error_type,
                               frames=[ev.Frame(**f) for f in frames], formatted="\n".join(run.stderr_tail[-60:]),
                               phase="setup" if rec.events_seen == 0 else "run")
        else:
            last = next((ln for ln in reversed(run.stderr_tail) if ln.strip()), "")
            failed = ev.Failed(run_id=rec.run_id, error_type="ExitStatus",
                               message=f"the run exited with status {code}" + (f": {last.strip()}" if last else ""),
                               formatted="\n".join(run.stderr_tail[-60:]),
                               phase="setup" if rec.events_seen == 0 else "run")
        rec.apply(failed)
        run.pending.append(failed)

    @staticmethod
    def _outcome(rec: RunRecord) -> str:
        """How an ended run went, in a few words (`done · best val_loss 0.21 · 3 epochs · 4.2 s`)."""
        if rec.status == "failed":
            return f"failed: {(rec.failure or {}).get('error_type', 'error')}{_on_rank(rec)}"
        parts = ["stopped" if rec.status == "interrupted" else "done"]
        if rec.fn == LR_FIND and rec.lr_find is not None:
            parts.append(lr_find_text(rec.lr_find))
        if rec.monitor and rec.best_model_score is not None:
            parts.append(f"best {rec.monitor} {fmt.format_value(rec.best_model_score)}")
        if rec.epochs is not None and rec.fn == "fit":
            parts.append(f"{rec.epochs} epoch{'s' if rec.epochs != 1 else ''}")
        if rec.duration_s is not None:
            parts.append(f"{rec.duration_s:.1f} s")
        hardware = rec.hardware
        if hardware:
            parts.append(hardware)
        return " · ".join(parts)

    async def _announce(self, rec: RunRecord, outcome: str, folder: str) -> None:
        lines = [f"{fmt.fn_title(rec.fn)} {rec.label}: {outcome}"]
        if rec.fn not in ("fit", LR_FIND):
            shown = ", ".join(f"{k} {fmt.format_value(v)}" for k, v in list(rec.latest.items())[:4])
            if shown:
                lines.append(shown)
        if rec.best_model_path:
            lines.append(f"checkpoint: {os.path.relpath(rec.best_model_path, folder)}")
        if rec.log_dir:
            lines.append(f"logs: {os.path.relpath(rec.log_dir, folder)}")
        message = " · ".join(lines)
        if rec.fn == LR_FIND or not getattr(self.context, "message_request_toasts", False):
            # Elsewhere (Neovim's vim.ui.select, Emacs' prompt) a request would block the editor: just tell.
            self._show(types.MessageType.Info, message)
            return
        try:
            choice = await self.server.window_show_message_request_async(types.ShowMessageRequestParams(
                type=types.MessageType.Info, message=message, actions=[types.MessageActionItem(title="TensorBoard")]))
        except Exception as exc:
            log.info("showMessageRequest failed (%s); falling back to showMessage", exc)
            self._show(types.MessageType.Info, message)
            return
        if choice is not None and getattr(choice, "title", None) == "TensorBoard":
            try:
                await self.open_tensorboard({"uri": rec.uri})
            except RunCommandError as exc:
                self._show(types.MessageType.Error, str(exc))

    def prune(self, folder: str) -> list[str]:
        """Apply `[tool.torchbolt.run]` keep_runs / keep_best_runs / max_runs_mb to the folder's stored runs."""
        try:
            keep_last, keep_best, max_bytes = self.settings_for(folder, None).history_limits()
        except SettingsError:
            return []
        runs = self.history.get(folder, [])
        active = {r.record.run_id for r in self.active.values() if r.folder == folder}
        removed = set(RunStore(folder).prune(runs, keep_last, keep_best, max_bytes, active, _score))
        if removed:
            self.history[folder] = [r for r in runs if r.run_id not in removed]
            for key, rec in list(self.records.items()):
                if rec.run_id in removed:
                    del self.records[key]
            log.info("pruned %d stored run(s) of %s", len(removed), folder)
        return sorted(removed)

    def _save(self, run: ActiveRun) -> None:
        try:
            RunStore(run.folder).write_summary(run.record)
        except OSError as exc:
            log.warning("cannot write the run summary: %s", exc)

    # ------------------------------------------------------------------------------------------------
    # failure diagnostics
    # ------------------------------------------------------------------------------------------------
    def _publish_failure(self, run: ActiveRun) -> None:
        rec = run.record
        failure = rec.failure or {}
        try:
            failed = ev.Failed.model_validate(failure)
        except Exception:  # a failure recorded before any event (the child never started)
            return
        fallback = (run.target.path, run.target.line)
        # A bad Trainer argument that came from pyproject.toml is also shown at its line there.
        pyproject = os.path.join(run.folder, "pyproject.toml")
        extra: list[tuple[str, int, str]] = []
        for arg in rec.command:
            if arg.startswith("--trainer."):
                name = arg[len("--trainer."):]
                if name in failed.message:
                    line = trainer_arg_line(run.folder, name)
                    if line is not None:
                        extra.append((pyproject, line, name))
        by_path: dict[str, list[types.Diagnostic]] = {}
        related_ok = getattr(self.context, "related_information", True)
        for fd in failure_diagnostics(failed, self.roots() or [run.folder], fallback):
            diag = types.Diagnostic(
                range=types.Range(types.Position(fd.line, 0), types.Position(fd.line, max(len(fd.code_line), 1) + 200)),
                message=fd.message, source=SOURCE, code="run-failed",
                severity=types.DiagnosticSeverity.Error if fd.severity == "error" else types.DiagnosticSeverity.Information,
                related_information=[types.DiagnosticRelatedInformation(
                    location=types.Location(uri=from_fs_path(r.path) or r.path,
                                            range=types.Range(types.Position(r.line, 0), types.Position(r.line, 200))),
                    message=r.message) for r in fd.related] if related_ok and fd.related else None)
            by_path.setdefault(os.path.abspath(fd.path), []).append(diag)
        for path, line, _name in extra:
            by_path.setdefault(path, []).append(types.Diagnostic(
                range=types.Range(types.Position(line, 0), types.Position(line, 200)),
                message=f"{failed.error_type}: {failed.message}", source=SOURCE, code="run-failed",
                severity=types.DiagnosticSeverity.Error))
        self.failure_diags[rec.key] = by_path
        self._diagnostics_changed(set(by_path))

    def _clear_failure(self, key: str) -> None:
        old = self.failure_diags.pop(key, None)
        if old:
            self._diagnostics_changed(set(old))

    def diagnostics_for_path(self, path: str) -> list[types.Diagnostic]:
        """Run-failure diagnostics currently shown in a file (merged into the server's diagnostics)."""
        path = os.path.abspath(path)
        out: list[types.Diagnostic] = []
        for by_path in self.failure_diags.values():
            out.extend(by_path.get(path, ()))
        return out

    def _diagnostics_changed(self, paths: set[str]) -> None:
        # a listener returns True when it published them (merged into the server's diagnostics)
        if any([bool(listener(paths)) for listener in self.diagnostics_listeners]):
            return
        # Nobody merges our diagnostics: publish them ourselves (push).
        for path in paths:
            uri = from_fs_path(path)
            if uri:
                self.server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                    uri=uri, diagnostics=self.diagnostics_for_path(path)))

    # ------------------------------------------------------------------------------------------------
    # messages
    # ------------------------------------------------------------------------------------------------
    def _log(self, kind: types.MessageType, message: str) -> None:
        self.server.window_log_message(types.LogMessageParams(type=kind, message=message))

    def _show(self, kind: types.MessageType, message: str) -> None:
        self.server.window_show_message(types.ShowMessageParams(type=kind, message=message))
