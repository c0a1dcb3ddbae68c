"""Linting in a helper process, so the language server's event loop and threads keep the GIL.

A 3,000-line file costs the engine about one `ast.parse` plus a walk (~100 ms of pure Python); in a
thread that competes with the server's own work on a 2-core machine. `LintPool` runs it in one
spawned worker process (no torch; the engine only needs the torch-free catalog) and falls back to
the calling thread when a process cannot be started or dies.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..analysis.facts import FactsCache, FileFacts
from ..analysis.gc_pause import paused_gc
from ..analysis.installed import installed_sources
from .config import LintConfig
from .engine import lint_source
from .facts import Project
from .incremental import IncrementalParser
from .model import Finding

log = logging.getLogger(__name__)


#: Per-process: the worker re-parses only the top-level statements an edit touched.
_PARSER = IncrementalParser()
_PARSER_LOCK = threading.Lock()  # the thread-pool fallback may run jobs concurrently
_FACTS: dict[str, FactsCache] = {}  # per path: the per-statement fact memory (same statements as _PARSER's)
#: The workspace facts this process was sent, by path: a job names unchanged ones by `facts_key` only, so a
#: lint after an edit does not pickle the whole workspace again.
_FILES: dict[str, FileFacts] = {}
_FILES_LOCK = threading.Lock()


class StaleFacts(LookupError):
    """A job named facts by key that this process does not hold (it restarted): send them in full."""


def facts_key(facts: FileFacts) -> tuple[int, str]:
    """What identifies a file's facts between the server and the worker."""
    return facts.digest, facts.module_name


def _snapshot(files: Mapping[str, FileFacts | tuple[int, str]], linted: str) -> dict[str, FileFacts]:
    with _FILES_LOCK:
        out: dict[str, FileFacts] = {}
        for path, value in files.items():
            if isinstance(value, tuple):
                known = _FILES.get(path)
                if known is None or facts_key(known) != value:
                    raise StaleFacts(path)
                out[path] = known
            else:
                _FILES[path] = out[path] = value
        for gone in set(_FILES) - set(files) - {linted}:  # the linted file is left out, not gone
            del _FILES[gone]
        return out


def lint_job(text: str, path: str, files: Mapping[str, FileFacts | tuple[int, str]], config: LintConfig,
             roots: tuple[str, ...] = (), interpreter: str | None = None) -> tuple[bool, list[Finding]]:
    """Lint one text against a snapshot of the workspace facts: (parsed, findings). Runs in the worker.

    `files` holds the other files' facts, or their `facts_key` when an earlier job sent them (StaleFacts
    when this process does not have them). `interpreter` is the run interpreter whose installed packages
    (Lightning) are read from source."""
    project = Project.of_files(_snapshot(files, path), roots, installed_sources(interpreter))
    with _PARSER_LOCK, paused_gc():  # the cached trees and walks of a path are not shared between jobs
        try:
            _PARSER.parse(path, text)
            parser = _PARSER.parse
        except (SyntaxError, ValueError):
            parser = None  # broken text: the engine reports it
        if parser is not None and path not in _FACTS:
            while len(_FACTS) >= _PARSER.max_files:
                _FACTS.pop(next(iter(_FACTS)))
            _FACTS[path] = FactsCache()
        result = lint_source(text, path, project, config, parser=parser,
                             scan_cache=_PARSER.scan_cache(path) if parser else None,
                             facts_cache=_FACTS.get(path) if parser else None)
    return result.parsed, result.findings


def _watch_parent(parent: int) -> None:
    """Exit when the server process is gone (a killed server must not leave workers behind)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker(parent: int) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    from . import rules  # noqa: F401  (declare the rules before the first job)


def _warm() -> int:
    return os.getpid()


class LintPool:
    """One lint worker process, started lazily; `executor()` says where a job runs."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._failed = False

    def start(self) -> None:
        """Start the worker now (the first lint then does not pay the process start)."""
        if self._pool is not None or self._failed or os.environ.get("TORCHBOLT_LINT_IN_PROCESS") == "1":
            return
        try:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(os.getpid(),))
            self._pool.submit(_warm)
        except (OSError, RuntimeError) as exc:
            log.warning("lint worker process unavailable (%s); linting in threads", exc)
            self._failed = True
            self._pool = None

    def executor(self, fallback: Executor) -> Executor:
        return self._pool if self._pool is not None else fallback

    def broken(self) -> None:
        """The worker died: lint in threads from now on."""
        log.warning("lint worker process died; linting in threads")
        self._failed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["BrokenProcessPool", "LintPool", "StaleFacts", "facts_key", "lint_job"]
