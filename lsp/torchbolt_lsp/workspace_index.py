"""The workspace index: facts of every Python file under the workspace roots, kept current.

Built in the background at startup (a worker thread parses files with `ast`, off the event loop), then
updated from open documents (their current text wins over the disk), saves and file-watcher events.
Queries answer cross-file questions: the Lightning kind of a class through bases in other files (and in
installed packages, read from source: `analysis.installed`), every logged metric name with its
locations, monitor references, Trainer and callback calls, which classes reach `trainer.fit`.

This is the one place that resolves classes: the server's features, the lint rules and `torchbolt check`
(which builds an index of the checked files), and the runs all ask it.

Thread model: mutations take `self._lock`; facts are immutable, so queries work on a snapshot of the
dict. Change listeners (`add_listener`) are called by the server on the event-loop thread.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from .analysis.facts import BaseRef, CallFacts, ClassFacts, FileFacts, LoggedMetric, MonitorRef, extract_facts
from .analysis.gc_pause import paused_gc
from .analysis.names import KIND_OF_BASE, canonical, is_lightning_module_path

if TYPE_CHECKING:
    from .analysis.installed import InstalledSources
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

#: Bases that say nothing about a class (it stays "complete": no unseen base may define a hook).
_NEUTRAL_BASES = frozenset({"object", "ABC", "abc.ABC", "Generic", "typing.Generic", "Protocol",
                            "typing.Protocol"})


@dataclass(frozen=True)
class Resolved:
    """A class with its inheritance followed through the workspace and installed packages."""

    kind: str | None  # "module" | "datamodule" | "callback" | "trainer" | None
    methods: frozenset[str]  # defined by the class or a base that is not Lightning's own API class
    manual_optimization: bool  # automatic optimization may be off (the class or a base)
    complete: bool  # every base was followed (Lightning's, workspace, installed source, or neutral)
    init_params: tuple[str, ...] | None = None  # the nearest __init__'s parameters below Lightning's class


_UNRESOLVED = Resolved(None, frozenset(), False, False)
#: Kinds of classes whose methods are Lightning hooks (a Trainer subclass is resolved, but has none).
_HOOK_KINDS = frozenset(KIND_OF_BASE.values())


def lightning_kind(qualified: str | None) -> str | None:
    """Kind given by one of Lightning's base classes named by its qualified name (`...LightningModule`)."""
    name = canonical(qualified)
    if name == "Trainer":
        return "trainer"
    if name in KIND_OF_BASE:
        return KIND_OF_BASE[name]
    if qualified and is_lightning_module_path(qualified) and ".callbacks." in f".{qualified}":
        return "callback"  # subclassing a built-in callback the catalog does not list (BasePredictionWriter)
    return None


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
        self._resolved: dict[tuple[str, str], Resolved] = {}
        self._fitted: dict[tuple[str, str], frozenset[str]] | None = None
        self.installed: InstalledSources | None = None  # the run interpreter's packages (set by the owner)
        self._metric_cache: tuple[int, dict[str, list[tuple[str, LoggedMetric]]]] | None = None
        self._installed_facts: dict[str, FileFacts] = {}
        self._installed_memo: dict[tuple[str, str], tuple[str, ClassFacts] | None] = {}
        # memos of derived answers: `_lookups` hold facts objects (cleared on every change), `_structure` only
        # names and paths (kept while no file's cross-file facts change)
        self._lookups: dict[tuple[object, ...], object] = {}
        self._structure: dict[tuple[object, ...], object] = {}
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

    @overload
    def facts_for_text(self, path: str, text: str, parses: DocumentParses | None = None) -> FileFacts: ...
    @overload
    def facts_for_text(self, path: str, text: str, parses: DocumentParses | None,
                       abandon: Callable[[], bool]) -> FileFacts | None: ...

    def facts_for_text(self, path: str, text: str, parses: DocumentParses | None = None,
                       abandon: Callable[[], bool] | None = None) -> FileFacts | None:
        """Parse and extract facts of one file's text (pure; no index change).

        `parses` (open documents) keeps the previous parse and facts of `path`, so only what an edit
        touched is parsed and walked again; the facts are the same as without it. `abandon` is asked
        after the parse: True (the text is already outdated) skips the extraction and gives None.
        """
        # the repairing parser lives with the editor's documents (tree-sitter, lsprotocol): imported here so
        # that `torchbolt check`, which builds an index too, does not pay for them
        from .document import parse_ast

        module, is_package = module_name_for(path, self.roots)
        with paused_gc():
            if parses is None:
                return extract_facts(parse_ast(text), text, path, module, is_package, self.encoding)
            with parses.lock:
                tree = parses.parse(path, text)
                if tree is not None:
                    if abandon is not None and abandon():
                        return None
                    cache = parses.facts_cache(path)
                    return extract_facts(tree, text, path, module, is_package, self.encoding, cache)
            if abandon is not None and abandon():
                return None
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
            # the same cross-file facts at other positions (an edit inside a method, the linted text put back
            # into its own project): class resolutions stay valid, only position-holding caches go
            same = old is not None and old.cross_file_key() == facts.cross_file_key()
            self._changed(structural=not same)

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

    def _changed(self, structural: bool = True) -> None:
        self.generation += 1
        self._metric_cache = None
        self._lookups.clear()
        if structural:
            self._resolved.clear()
            self._fitted = None
            self._structure.clear()

    def set_installed(self, installed: InstalledSources | None) -> None:
        """Read installed packages from this interpreter's sources from now on (resolutions are redone)."""
        with self._lock:
            if installed is self.installed:
                return
            self.installed = installed
            self._installed_facts.clear()
            self._installed_memo.clear()
            self._changed()

    @classmethod
    def of_files(cls, files: Mapping[str, FileFacts], roots: Iterable[str] = (),
                 installed: InstalledSources | None = None) -> WorkspaceIndex:
        """An index holding already extracted facts (the lint worker's and `torchbolt check`'s project)."""
        index = cls(roots)
        index.installed = installed
        for path, facts in files.items():
            index.put(path, facts)
        return index

    def module_name(self, path: str) -> tuple[str, bool]:
        """Dotted module name of a path under this index's roots, and whether it is a package."""
        return module_name_for(path, self.roots)

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
        if not found and near is not None and module.partition(".")[0] in self._path_names():
            # imports relative to a folder above the importing file that is not a root (`from base import X`
            # in a script folder, `from vision.base import X` run from the project folder)
            parts = module.split(".")
            folder = os.path.dirname(near)
            with self._lock:
                for _ in range(8):
                    for candidate in (os.path.join(folder, *parts) + ".py",
                                      os.path.join(folder, *parts, "__init__.py")):
                        if candidate in self._files:
                            return [candidate]
                    parent = os.path.dirname(folder)
                    if parent == folder:
                        break
                    folder = parent
        return found

    def remember(self, key: tuple[object, ...], compute: Callable[[], object]) -> object:
        """A derived answer that depends only on class structure (names, bases, signatures), computed once
        until some file's cross-file facts change (rules use it for per-workspace memos)."""
        if key in self._structure:
            return self._structure[key]
        value = self._structure[key] = compute()
        return value

    def _path_names(self) -> frozenset[str]:
        """Every folder name and file stem of the indexed paths (a module head outside it is not here)."""
        hit = self._structure.get(("path-names",))
        if hit is None:
            names: set[str] = set()
            for path in self.files():
                parts = path.split(os.sep)
                names.update(parts[:-1])
                names.add(parts[-1].removesuffix(".py"))
            hit = self._structure[("path-names",)] = frozenset(names)
        return hit  # type: ignore[return-value]

    def resolve_class(self, path: str, name: str, depth: int = 0, installed: bool = True
                      ) -> tuple[str, ClassFacts] | None:
        """The class `name` as seen from file `path`: defined there, or imported from another workspace file
        (or an installed package's source, when `installed` is set)."""
        facts = self._facts_at(path)
        if facts is None or depth > 8:
            return None
        local = facts.class_named(name)
        if local is not None:
            return path, local
        target = facts.bindings.get(name)
        if target is not None:
            return self.resolve_qualified(target, near=path, depth=depth + 1, installed=installed)
        return None

    def resolve_qualified(
        self, qualified: str, near: str | None = None, depth: int = 0, installed: bool = True
    ) -> tuple[str, ClassFacts] | None:
        """A class by qualified name, following re-exports in `__init__` files: a workspace class first,
        then one in an installed package's source."""
        module, _, name = qualified.rpartition(".")
        if not module or depth > 8:
            return None
        key = ("q", qualified, os.path.dirname(near) if near else None, installed)
        if key in self._lookups:
            return self._lookups[key]  # type: ignore[return-value]
        hit = self._resolve_qualified(module, name, near, depth, installed)
        self._lookups[key] = hit
        return hit

    def _resolve_qualified(self, module: str, name: str, near: str | None, depth: int, installed: bool
                           ) -> tuple[str, ClassFacts] | None:
        for candidate in self._module_files(module, near):
            hit = self.resolve_class(candidate, name, depth + 1, installed)
            if hit is not None:
                return hit
        if installed and self.installed is not None:
            # installed sources do not change with the workspace: remembered until set_installed()
            key = (module, name)
            if key in self._installed_memo:
                return self._installed_memo[key]
            hit = None
            facts = self.installed.facts(module)
            if facts is not None:
                with self._lock:
                    self._installed_facts[facts.path] = facts
                hit = self.resolve_class(facts.path, name, depth + 1)
            if hit is None or hit[0] in self._installed_facts:
                self._installed_memo[key] = hit
            return hit
        return None

    def _facts_at(self, path: str) -> FileFacts | None:
        """Facts of a workspace file, or of an installed module file read while resolving."""
        facts = self.get(path)
        if facts is None:
            with self._lock:
                facts = self._installed_facts.get(path)
        return facts

    def base_classes(self, path: str, cls: ClassFacts) -> list[tuple[str, ClassFacts]]:
        """Classes (workspace or installed) that `cls` (in `path`) derives from directly."""
        return [hit for _, hit in self._bases(path, cls) if hit is not None]

    def _bases(self, path: str, cls: ClassFacts) -> list[tuple[str, tuple[str, ClassFacts] | None]]:
        return [(base.qualified or base.source, self._base_hit(path, cls, base)) for base in cls.bases]

    def _base_hit(self, path: str, cls: ClassFacts, base: BaseRef) -> tuple[str, ClassFacts] | None:
        if base.qualified is not None:
            hit = self.resolve_qualified(base.qualified, near=path)
        elif "." not in base.source:
            hit = self.resolve_class(path, base.source)
        else:
            hit = None
        return None if hit is not None and hit[1] is cls else hit

    def resolved(self, path: str, class_name: str) -> Resolved:
        """Kind, methods, manual-optimization flag and completeness of a class, through every base."""
        path = os.path.abspath(path)
        key = (path, class_name)
        with self._lock:
            hit = self._resolved.get(key)
            generation = self.generation
        if hit is not None:
            return hit
        result = self._resolve(path, class_name, frozenset())
        with self._lock:
            if self.generation == generation:  # facts changed meanwhile (another thread): do not cache
                self._resolved[key] = result
        return result

    def _resolve(self, path: str, class_name: str, seen: frozenset[tuple[str, str]]) -> Resolved:
        if (path, class_name) in seen or len(seen) > 32:
            return _UNRESOLVED
        facts = self._facts_at(path)
        cls = facts.class_named(class_name) if facts else None
        if cls is None:
            return _UNRESOLVED
        seen = seen | {(path, class_name)}
        kind: str | None = None
        methods = set(cls.defined)
        manual = cls.manual_optimization
        complete = True
        init = cls.init_params if cls.method("__init__") is not None else None
        for base in cls.bases:
            qualified = base.qualified or base.source
            direct = lightning_kind(base.qualified)
            if direct is not None:
                kind = kind or direct  # Lightning's own class: its methods are the catalog's hooks
                continue
            hit = self._base_hit(path, cls, base)
            if hit is None:
                if qualified in _NEUTRAL_BASES or qualified.startswith("typing."):
                    continue
                complete = False
                continue
            sub = self._resolve(hit[0], hit[1].name, seen)
            kind = kind or sub.kind
            methods |= sub.methods
            manual = manual or sub.manual_optimization
            complete = complete and sub.complete
            if init is None:
                init = sub.init_params
        return Resolved(kind, frozenset(methods), manual, complete, init)

    def class_kind(self, path: str, class_name: str) -> str | None:
        """'module' | 'datamodule' | 'callback' through inheritance (the kinds with hooks), else None."""
        kind = self.resolved(path, class_name).kind
        return kind if kind in _HOOK_KINDS else None

    def kind_of_bases(self, path: str, bases: Iterable[tuple[str, str | None]]) -> str | None:
        """Kind of a class being typed, from its bases as (source, qualified) pairs (no facts needed)."""
        for source, qualified in bases:
            direct = lightning_kind(qualified)
            if direct is not None:
                return direct if direct in _HOOK_KINDS else None
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
        """Methods defined by a class and its non-Lightning base classes."""
        return set(self.resolved(path, class_name).methods)

    # ------------------------------------------------------------------------------- run targets
    def run_fns(self, path: str, class_name: str) -> frozenset[str]:
        """Which of fit/validate/test/predict some `trainer.<fn>(model)` call in the workspace runs this class
        with: only calls that reach this very class (same file, or an import of it), not a namesake."""
        with self._lock:
            table = self._fitted
        if table is None:
            built: dict[tuple[str, str], set[str]] = {}
            for file_path, facts in self.files().items():
                for ref in facts.fits:
                    if ref.qualified is not None:
                        hit = self.resolve_qualified(ref.qualified, near=file_path)
                    elif "." not in ref.source:
                        hit = self.resolve_class(file_path, ref.source)
                    else:
                        hit = None
                    if hit is not None:
                        built.setdefault((hit[0], hit[1].name), set()).add(ref.fn)
            table = {k: frozenset(v) for k, v in built.items()}
            with self._lock:
                self._fitted = table
        return table.get((os.path.abspath(path), class_name), frozenset())

    def ancestors(self, path: str, class_name: str) -> frozenset[tuple[str, str]]:
        """(path, name) of a class and every class it derives from below Lightning's own classes."""
        me = (os.path.abspath(path), class_name)
        key = ("ancestors", *me)
        hit = self._structure.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        out: set[tuple[str, str]] = set()
        todo = [me]
        while todo and len(out) < 64:
            current = todo.pop()
            if current in out:
                continue
            out.add(current)
            facts = self._facts_at(current[0])
            cls = facts.class_named(current[1]) if facts else None
            if cls is not None:
                for base in cls.bases:
                    if lightning_kind(base.qualified) is None:
                        hit = self._base_hit(current[0], cls, base)
                        if hit is not None:
                            todo.append((hit[0], hit[1].name))
        result = frozenset(out)
        self._structure[key] = result
        return result

    def hierarchy(self, path: str, class_name: str) -> frozenset[tuple[str, str]]:
        """A class, its ancestors and its workspace subclasses: the classes whose logging it shares."""
        me = (os.path.abspath(path), class_name)
        key = ("hierarchy", *me)
        hit = self._structure.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        out = set(self.ancestors(*me))
        for file_path, facts in self.files().items():
            for cls in facts.classes:
                if (file_path, cls.name) not in out and me in self.ancestors(file_path, cls.name):
                    out.add((file_path, cls.name))
        result = frozenset(out)
        self._structure[key] = result
        return result

    def has_modules(self) -> bool:
        """Whether any workspace class is a LightningModule."""
        hit = self._structure.get(("has_modules",))
        if hit is None:
            hit = self._structure[("has_modules",)] = any(
                self.class_kind(path, cls.name) == "module" for path, facts in self.files().items()
                for cls in facts.classes)
        return bool(hit)

    def _logged_split(self) -> tuple[frozenset[str], tuple[re.Pattern[str], ...], tuple[tuple[str, str], ...]]:
        """Literal logged names, name patterns, and (path, class) of each dynamic name (memoized)."""
        hit = self._structure.get(("logged",))
        if hit is None:
            names: set[str] = set()
            patterns: dict[str, re.Pattern[str]] = {}
            dynamic: set[tuple[str, str]] = set()
            for file_path, metric in self.logged_metrics():
                if metric.name is not None:
                    names.add(metric.name)  # the rule accepts the _step/_epoch forks of a name itself
                if metric.pattern is not None:
                    patterns.setdefault(metric.pattern, re.compile(metric.pattern))
                elif metric.name is None:
                    dynamic.add((file_path, metric.class_name or ""))
            hit = self._structure[("logged",)] = (frozenset(names), tuple(patterns.values()), tuple(sorted(dynamic)))
        return hit  # type: ignore[return-value]

    def monitorable(self, path: str, class_name: str | None
                    ) -> tuple[frozenset[str], tuple[re.Pattern[str], ...]] | None:
        """Metric names (and name patterns) a `monitor=` at `path` (inside `class_name`, or outside any
        class) can watch; None when a name computed at run time could reach it.

        Literal and f-string names count workspace-wide. A dynamic name (`self.log_dict(metrics)`) only
        excuses monitors that could see it: inside a module, those of its own class hierarchy; outside a
        class, those of the classes this file runs (`trainer.fit(Model())`), else of the modules it
        defines, else anywhere (a file of callbacks only: the model is chosen elsewhere, e.g. by
        LightningCLI).
        """
        path = os.path.abspath(path)
        names, patterns, dynamic = self._logged_split()
        if dynamic:
            visible: set[tuple[str, str]] | None
            if class_name is not None:
                visible = self.hierarchy(path, class_name)
            else:
                facts = self.get(path)
                reached: set[tuple[str, str]] = set()
                for ref in facts.fits if facts else ():
                    hit = (self.resolve_qualified(ref.qualified, near=path) if ref.qualified
                           else self.resolve_class(path, ref.source) if "." not in ref.source else None)
                    if hit is not None:
                        reached |= self.hierarchy(hit[0], hit[1].name)
                if facts is not None and not facts.fits:  # the modules defined here, if any
                    for cls in facts.classes:
                        if self.class_kind(path, cls.name) == "module":
                            reached |= self.hierarchy(path, cls.name)
                visible = reached if reached or facts is not None and facts.fits else None
            for file_path, class_name_of_metric in dynamic:
                if visible is None or file_path == path or (file_path, class_name_of_metric) in visible:
                    return None
        return names, patterns

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
