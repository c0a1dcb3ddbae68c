"""The workspace index: facts of every Python file under the workspace roots, kept current.

Built in the background at startup (a worker thread parses files with `ast`, off the event loop), then
updated from open documents (their current text wins over the disk), saves and file-watcher events.
Queries answer cross-file questions: the Lightning kind of a class through bases in other files, every
logged metric name with its locations, monitor references, Trainer and callback calls.

Thread model: mutations take `self._lock`; facts are immutable, so queries work on a snapshot of the
dict. Change listeners (`add_listener`) are called by the server on the event-loop thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .analysis.facts import CallFacts, ClassFacts, FileFacts, LoggedMetric, MonitorRef, extract_facts
from .analysis.names import KIND_OF_BASE, canonical
from .document import parse_ast

if TYPE_CHECKING:
    from .analysis.parse_cache import DocumentParses

#: Folder names never scanned.
SKIP_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        "site-packages",
        "dist-packages",
        ".venv",
        "venv",
        "env",
        ".env",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "build",
        "dist",
        ".eggs",
        "lightning_logs",
        ".ipynb_checkpoints",
    }
)
#: Files bigger than this are not indexed (generated code, data dumps).
MAX_FILE_BYTES = 2_000_000
#: Stop scanning after this many files (a huge monorepo opened by mistake must not eat the machine).
MAX_FILES = 20_000

Listener = Callable[[set[str]], None]


def _is_env_dir(path: str) -> bool:
    """A virtual environment or conda env has pyvenv.cfg / conda-meta at its top."""
    return os.path.exists(os.path.join(path, "pyvenv.cfg")) or os.path.isdir(os.path.join(path, "conda-meta"))


def iter_python_files(roots: Iterable[str]) -> Iterator[str]:
    """Every `*.py` under the roots, skipping VCS folders, virtual environments and caches."""
    count = 0
    for root in roots:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in SKIP_DIRS
                and not d.endswith(".egg-info")
                and not _is_env_dir(os.path.join(dirpath, d))
            )
            for name in sorted(filenames):
                if name.endswith(".py"):
                    count += 1
                    if count > MAX_FILES:
                        return
                    yield os.path.join(dirpath, name)


def module_name_for(path: str, roots: Iterable[str]) -> tuple[str, bool]:
    """Dotted module name of a file relative to the first root containing it, and whether it is a package."""
    p = Path(path)
    is_package = p.name == "__init__.py"
    for root in roots:
        try:
            rel = p.relative_to(root)
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if is_package:
            parts = parts[:-1]
        return ".".join(parts), is_package
    return (p.parent.name if is_package else p.stem), is_package


class WorkspaceIndex:
    """Facts of all workspace files plus cross-file queries."""

    def __init__(self, roots: Iterable[str] = (), encoding: str = "utf-16") -> None:
        self.roots: list[str] = [os.path.abspath(r) for r in roots]
        self.encoding = encoding
        self._files: dict[str, FileFacts] = {}
        self._modules: dict[str, list[str]] = {}
        self._open: set[str] = set()  # paths whose facts come from an open document
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._kind_cache: dict[tuple[str, str], str | None] = {}
        self._metric_cache: tuple[int, dict[str, list[tuple[str, LoggedMetric]]]] | None = None
        self.generation = 0
        self.ready = threading.Event()  # set when the initial scan finished
        self._cancelled = threading.Event()

    def cancel_scan(self) -> None:
        """Stop a running scan after the current file (at shutdown, so the process can exit at once)."""
        self._cancelled.set()

    def configure(self, roots: Iterable[str], encoding: str) -> None:
        """Set the workspace roots and position encoding (at `initialize`; listeners are kept)."""
        with self._lock:
            self.roots = [os.path.abspath(r) for r in roots]
            self.encoding = encoding
            self._files.clear()
            self._modules.clear()
            self._changed()

    # ----------------------------------------------------------------------------------- listeners
    def add_listener(self, listener: Listener) -> None:
        """Call `listener(changed_paths)` after facts change (the server calls it on the event loop)."""
        self._listeners.append(listener)

    def notify(self, paths: set[str]) -> None:
        """Tell listeners that these paths' facts changed; a failing listener does not stop the others."""
        import logging

        for listener in list(self._listeners):
            try:
                listener(set(paths))
            except Exception:
                logging.getLogger(__name__).exception("index listener failed")

    # ------------------------------------------------------------------------------------ building
    def scan(self) -> set[str]:
        """Index every Python file under the roots (blocking; run it in a worker thread)."""
        changed: set[str] = set()
        for path in iter_python_files(self.roots):
            if self._cancelled.is_set():
                break
            if self.update_from_disk(path, notify=False):
                changed.add(path)
        self.ready.set()
        return changed

    def facts_for_text(self, path: str, text: str, parses: DocumentParses | None = None) -> FileFacts:
        """Parse and extract facts of one file's text (pure; no index change).

        `parses` (open documents) keeps the previous parse and facts of `path`, so only what an edit
        touched is parsed and walked again; the facts are the same as without it.
        """
        module, is_package = module_name_for(path, self.roots)
        if parses is None:
            return extract_facts(parse_ast(text), text, path, module, is_package, self.encoding)
        with parses.lock:
            tree = parses.parse(path, text)
            if tree is not None:
                cache = parses.facts_cache(path)
                return extract_facts(tree, text, path, module, is_package, self.encoding, cache)
        # broken text: the repairing parse, not cached (the last good parse stays the base for the next edit)
        return extract_facts(parse_ast(text), text, path, module, is_package, self.encoding)

    def update_from_disk(self, path: str, notify: bool = False) -> bool:
        """Re-read a file from disk unless an open document owns it; remove it when it is gone."""
        path = os.path.abspath(path)
        with self._lock:
            if path in self._open:
                return False
        try:
            if os.path.getsize(path) > MAX_FILE_BYTES:
                return self.remove(path)
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return self.remove(path)
        self.put(path, self.facts_for_text(path, text))
        if notify:
            self.notify({path})
        return True

    def put(self, path: str, facts: FileFacts, from_open_document: bool = False) -> None:
        """Store facts for a path (from the disk or from an open document's text)."""
        path = os.path.abspath(path)
        with self._lock:
            if from_open_document:
                self._open.add(path)
            elif path in self._open:
                return  # an open document owns this path; the disk copy is stale
            old = self._files.get(path)
            if old is not None and old.module_name in self._modules:
                paths = self._modules[old.module_name]
                if path in paths:
                    paths.remove(path)
            self._files[path] = facts
            for name in self._module_aliases(facts.module_name):
                self._modules.setdefault(name, []).append(path)
            self._changed()

    def release_open(self, path: str) -> bool:
        """An open document closed: drop its facts; True when the disk copy should be re-read."""
        path = os.path.abspath(path)
        with self._lock:
            self._open.discard(path)
            if not os.path.isfile(path):
                self.remove(path)
                return False
            return True

    def remove(self, path: str) -> bool:
        path = os.path.abspath(path)
        with self._lock:
            old = self._files.pop(path, None)
            if old is None:
                return False
            for name in self._module_aliases(old.module_name):
                paths = self._modules.get(name, [])
                if path in paths:
                    paths.remove(path)
            self._changed()
            return True

    def _module_aliases(self, module_name: str) -> list[str]:
        names = [module_name]
        if module_name.startswith("src."):
            names.append(module_name[4:])
        return names

    def _changed(self) -> None:
        self.generation += 1
        self._kind_cache.clear()

    # ------------------------------------------------------------------------------------- queries
    def files(self) -> dict[str, FileFacts]:
        """A snapshot of all facts by path."""
        with self._lock:
            return dict(self._files)

    def get(self, path: str) -> FileFacts | None:
        with self._lock:
            return self._files.get(os.path.abspath(path))

    def _module_files(self, module: str, near: str | None = None) -> list[str]:
        with self._lock:
            found = list(self._modules.get(module, []))
        if not found and near is not None:
            # a script importing a sibling file (`from base import X`) without a package
            sibling = os.path.join(os.path.dirname(near), *module.split(".")) + ".py"
            with self._lock:
                if sibling in self._files:
                    found = [sibling]
        return found

    def resolve_class(self, path: str, name: str, depth: int = 0) -> tuple[str, ClassFacts] | None:
        """The class `name` as seen from file `path`: defined there, or imported from another workspace file."""
        facts = self.get(path)
        if facts is None or depth > 8:
            return None
        local = facts.class_named(name)
        if local is not None:
            return path, local
        target = facts.bindings.get(name)
        if target is not None:
            return self.resolve_qualified(target, near=path, depth=depth + 1)
        return None

    def resolve_qualified(
        self, qualified: str, near: str | None = None, depth: int = 0
    ) -> tuple[str, ClassFacts] | None:
        """A workspace class by qualified name, following re-exports in `__init__` files."""
        module, _, name = qualified.rpartition(".")
        if not module or depth > 8:
            return None
        for candidate in self._module_files(module, near):
            hit = self.resolve_class(candidate, name, depth + 1)
            if hit is not None:
                return hit
        return None

    def base_classes(self, path: str, cls: ClassFacts) -> list[tuple[str, ClassFacts]]:
        """Workspace classes that `cls` (in `path`) derives from directly."""
        out = []
        for base in cls.bases:
            if base.qualified is not None:
                hit = self.resolve_qualified(base.qualified, near=path)
            elif "." not in base.source:
                hit = self.resolve_class(path, base.source)
            else:
                hit = None
            if hit is not None and hit[1] is not cls:
                out.append(hit)
        return out

    def class_kind(self, path: str, class_name: str) -> str | None:
        """'module' | 'datamodule' | 'callback' through inheritance across workspace files, else None."""
        path = os.path.abspath(path)
        key = (path, class_name)
        with self._lock:
            if key in self._kind_cache:
                return self._kind_cache[key]
            generation = self.generation
        kind = self._kind(path, class_name, set())
        with self._lock:
            if self.generation == generation:  # facts changed meanwhile (another thread): do not cache
                self._kind_cache[key] = kind
        return kind

    def _kind(self, path: str, class_name: str, seen: set[tuple[str, str]]) -> str | None:
        if (path, class_name) in seen or len(seen) > 32:
            return None
        seen.add((path, class_name))
        facts = self.get(path)
        cls = facts.class_named(class_name) if facts else None
        if cls is None:
            return None
        direct = cls.direct_kind
        if direct is not None:
            return direct
        for base_path, base in self.base_classes(path, cls):
            kind = self._kind(base_path, base.name, seen)
            if kind is not None:
                return kind
        return None

    def kind_of_bases(self, path: str, bases: Iterable[tuple[str, str | None]]) -> str | None:
        """Kind of a class being typed, from its bases as (source, qualified) pairs (no facts needed)."""
        for source, qualified in bases:
            name = canonical(qualified)
            if name in KIND_OF_BASE:
                return KIND_OF_BASE[name]
            hit = (
                self.resolve_qualified(qualified, near=path)
                if qualified
                else self.resolve_class(path, source)
                if "." not in source
                else None
            )
            if hit is not None:
                kind = self.class_kind(hit[0], hit[1].name)
                if kind is not None:
                    return kind
        return None

    def inherited_methods(self, path: str, class_name: str) -> set[str]:
        """Methods defined by a class and its workspace base classes (not by Lightning itself)."""
        out: set[str] = set()
        todo = [(os.path.abspath(path), class_name)]
        seen: set[tuple[str, str]] = set()
        while todo and len(seen) < 32:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            facts = self.get(key[0])
            cls = facts.class_named(key[1]) if facts else None
            if cls is None:
                continue
            out.update(m.name for m in cls.methods)
            todo.extend((p, c.name) for p, c in self.base_classes(key[0], cls))
        return out

    def lightning_classes(self) -> list[tuple[str, ClassFacts, str]]:
        """(path, class, kind) of every Lightning class in the workspace."""
        out = []
        for path, facts in self.files().items():
            for cls in facts.classes:
                kind = self.class_kind(path, cls.name)
                if kind is not None:
                    out.append((path, cls, kind))
        return out

    def logged_metrics(self) -> list[tuple[str, LoggedMetric]]:
        """Every `self.log`/`self.log_dict` call in a LightningModule (or `pl_module.log` anywhere)."""
        out = []
        for path, facts in self.files().items():
            for metric in facts.logged:
                if metric.receiver == "pl_module" or (
                    metric.class_name and self.class_kind(path, metric.class_name) in ("module", "callback")
                ):
                    out.append((path, metric))
        return out

    def metric_names(self) -> dict[str, list[tuple[str, LoggedMetric]]]:
        """Produced metric name -> the log calls producing it (cached until the index changes)."""
        generation = self.generation
        cached = self._metric_cache
        if cached is not None and cached[0] == generation:
            return cached[1]
        out: dict[str, list[tuple[str, LoggedMetric]]] = {}
        for path, metric in self.logged_metrics():
            for name in metric.produced:
                out.setdefault(name, []).append((path, metric))
        if self.generation == generation:
            self._metric_cache = (generation, out)
        return out

    def metric_definitions(self, name: str) -> list[tuple[str, LoggedMetric]]:
        """The log calls that produce `name` (a `/dataloader_idx_N` suffix is ignored)."""
        base = name.split("/dataloader_idx_")[0]
        return self.metric_names().get(base, [])

    def calls(self, callee: str | None = None) -> list[tuple[str, CallFacts]]:
        """Trainer / callback / logger calls across the workspace (all, or those of one canonical callee)."""
        return [
            (path, call)
            for path, facts in self.files().items()
            for call in facts.calls
            if callee is None or call.callee == callee
        ]

    def monitor_refs(self, name: str | None = None) -> list[tuple[str, MonitorRef]]:
        """`monitor=` references (all, or those naming `name`)."""
        out = []
        for path, facts in self.files().items():
            for ref in facts.monitors:
                if name is None or ref.name == name:
                    out.append((path, ref))
        return out
