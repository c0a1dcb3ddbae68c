"""What the rules need to know about a file and the workspace, extracted from `ast` in one walk.

`scan(tree)` visits a module once and records imports, classes with their methods, and every call
with the class/method it sits in. `FileFacts` is the small cross-file summary of a file (classes with
their bases, logged metric names, classes passed to `fit`) that `Project` keeps for the workspace:
inheritance across files, "is this metric logged anywhere", "does the workspace fit this class".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..analysis.names import dotted_name

#: Top-level packages whose classes are Lightning's (or torchbolt's copy of Lightning's API).
LIGHTNING_ROOTS = ("lightning", "pytorch_lightning", "torchbolt")
#: Lightning base-class names and the kind of class that derives from them.
BASE_KINDS = {"LightningModule": "module", "LightningDataModule": "datamodule", "Callback": "callback"}


# --------------------------------------------------------------------------------------------------
# Imports
# --------------------------------------------------------------------------------------------------
# One implementation of `a.b.c` for Name/Attribute chains, shared with the server's analysis.
dotted = dotted_name


def qualify(expr: ast.expr, imports: dict[str, str]) -> str | None:
    """The qualified name an expression refers to, resolving its first component through the imports."""
    text = dotted(expr)
    if text is None:
        return None
    head, _, rest = text.partition(".")
    base = imports.get(head)
    if base is None:
        return text
    return f"{base}.{rest}" if rest else base


def is_lightning(qualified: str | None) -> bool:
    """True for names under lightning/pytorch_lightning/torchbolt, except lightning.fabric (another API)."""
    if not qualified:
        return False
    root = qualified.split(".")[0]
    return root in LIGHTNING_ROOTS and not qualified.startswith("lightning.fabric")


# --------------------------------------------------------------------------------------------------
# One walk over the module
# --------------------------------------------------------------------------------------------------
@dataclass
class ClassNode:
    """A class statement with its directly defined methods and class-level assignments."""

    node: ast.ClassDef
    methods: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)
    assigns: dict[str, ast.expr] = field(default_factory=dict)
    top: ast.stmt | None = None  # the top-level statement that holds this class (for fixes)


@dataclass
class CallSite:
    """A call with the class and the class method (outermost function in a class body) it sits in."""

    call: ast.Call
    cls: ClassNode | None
    method: ast.FunctionDef | ast.AsyncFunctionDef | None


@dataclass
class Scan:
    """The result of the single walk over a module."""

    classes: list[ClassNode] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    withs: list[tuple[ast.With | ast.AsyncWith, ClassNode | None, ast.AST | None]] = field(default_factory=list)
    fit_args: list[tuple[ast.expr, dict[str, str]]] = field(default_factory=list)  # first arg of .fit(), binds
    imports: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_lightning: bool = False  # `from lightning.pytorch import *`
    assigned_to: dict[int, str] = field(default_factory=dict)  # id(call) -> name in `name = call(...)`
    manual_classes: set[int] = field(default_factory=set)  # id(ClassDef) setting self.automatic_optimization=False
    _log_sites: list[CallSite] | None = None

    def log_sites(self) -> list[CallSite]:
        """The `self.log`/`self.log_dict`/`pl_module.log` calls among `calls` (computed once)."""
        if self._log_sites is None:
            self._log_sites = list(log_calls(self.calls))
        return self._log_sites


#: Node types that can hold nothing the rules look for (leaves, operators, contexts): never descended into.
_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.Name, ast.Constant)


def _record_import(node: ast.Import | ast.ImportFrom, out: Scan) -> None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                out.imports[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                out.imports[root] = root
    elif node.level == 0 and node.module:
        for alias in node.names:
            if alias.name == "*":
                out.star_lightning = out.star_lightning or node.module.split(".")[0] in LIGHTNING_ROOTS
            else:
                out.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    else:  # relative: a workspace module; keep the bare name for the project lookup
        for alias in node.names:
            if alias.name != "*":
                out.imports[alias.asname or alias.name] = f".{node.module or ''}.{alias.name}".replace("..", ".")


#: id(top-level statement) -> (the statement, its partial scan). The statement is kept so the id stays its own.
ScanCache = dict[int, tuple[ast.stmt, "_Partial"]]


@dataclass
class _Partial:
    """The scan of one top-level statement; module-level `x = Cls()` bindings are merged in order."""

    scan: Scan
    module_binds: dict[str, str]
    module_fits: list[int]  # indexes into scan.fit_args of `.fit(...)` calls at module level


def scan(tree: ast.Module, cache: ScanCache | None = None) -> Scan:
    """Walk the module once (iteratively, in source order), keeping each node's class and class method.

    Imports anywhere in the file are recorded too (people import inside functions; later ones win).
    With `cache`, top-level statements that are the very same objects as last time (an incremental
    parse reuses them) are not walked again; the cache is updated to the current statements.
    """
    out = Scan()
    module_binds: dict[str, str] = {}
    fresh: ScanCache = {}
    for stmt in tree.body:
        hit = cache.get(id(stmt)) if cache is not None else None
        part = hit[1] if hit is not None and hit[0] is stmt else _scan_statement(stmt)
        fresh[id(stmt)] = (stmt, part)
        sc = part.scan
        out.classes.extend(sc.classes)
        out.calls.extend(sc.calls)
        out.withs.extend(sc.withs)
        for i, (arg, binds) in enumerate(sc.fit_args):
            out.fit_args.append((arg, {**module_binds, **binds} if i in part.module_fits else binds))
        out.imports.update(sc.imports)
        out.star_lightning = out.star_lightning or sc.star_lightning
        out.assigned_to.update(sc.assigned_to)
        out.manual_classes |= sc.manual_classes
        module_binds.update(part.module_binds)
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return out


def _scan_statement(top: ast.stmt) -> _Partial:
    """The walk of one top-level statement."""
    out = Scan()
    module_fits: list[int] = []
    ClassDef, FunctionDef, AsyncFunctionDef, Lambda = ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda
    Call, Assign, With, AsyncWith, Attribute = ast.Call, ast.Assign, ast.With, ast.AsyncWith, ast.Attribute
    # (node, class, method, top-level statement, binds of the current scope)
    stack: list[tuple[ast.AST, ClassNode | None, ast.AST | None, ast.stmt, dict[str, str]]] = []
    module_binds: dict[str, str] = {}
    stack.append((top, None, None, top, module_binds))
    while stack:
        node, cls, method, top, binds = stack.pop()
        kind = type(node)
        if kind is ClassDef:
            info = ClassNode(node, top=top)  # type: ignore[arg-type]
            out.classes.append(info)
            for stmt in node.body:  # type: ignore[attr-defined]
                if isinstance(stmt, FunctionDef | AsyncFunctionDef):
                    info.methods[stmt.name] = stmt
                elif isinstance(stmt, Assign):
                    for target in stmt.targets:
                        if isinstance(target, ast.Name):
                            info.assigns[target.id] = stmt.value
                elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                    info.assigns[stmt.target.id] = stmt.value
            cls, method = info, None
        elif kind is FunctionDef or kind is AsyncFunctionDef or kind is Lambda:
            if method is None and cls is not None and kind is not Lambda:
                method = node
            binds = {}
        elif kind is Assign:
            value = node.value  # type: ignore[attr-defined]
            if type(value) is Call:
                name = dotted(value.func)
                if name:
                    for target in node.targets:  # type: ignore[attr-defined]
                        if type(target) is ast.Name:
                            binds[target.id] = name.split(".")[-1]
                            out.assigned_to[id(value)] = target.id
            if cls is not None and not (type(value) is ast.Constant and value.value is True):
                # `= False`, or a value known only at run time (`= not manual`): manual optimization is
                # possible, so the automatic-only rules stay quiet
                for target in node.targets:  # type: ignore[attr-defined]
                    if type(target) is Attribute and target.attr == "automatic_optimization" \
                            and type(target.value) is ast.Name and target.value.id == "self":
                        out.manual_classes.add(id(cls.node))
        elif kind is Call:
            out.calls.append(CallSite(node, cls, method))  # type: ignore[arg-type]
            func = node.func  # type: ignore[attr-defined]
            if type(func) is Attribute and func.attr == "fit":
                arg = node.args[0] if node.args else next(  # type: ignore[attr-defined]
                    (k.value for k in node.keywords if k.arg == "model"), None)  # type: ignore[attr-defined]
                if arg is not None:
                    if binds is module_binds:
                        module_fits.append(len(out.fit_args))
                    out.fit_args.append((arg, dict(binds)))
        elif kind is With or kind is AsyncWith:
            out.withs.append((node, cls, method))  # type: ignore[arg-type]
        elif kind is ast.Import or kind is ast.ImportFrom:
            _record_import(node, out)  # type: ignore[arg-type]
            continue
        # children, pushed in reverse so they pop in source order
        for name in reversed(node._fields):
            value = getattr(node, name, None)
            if type(value) is list:
                for item in reversed(value):
                    if isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                        stack.append((item, cls, method, top, binds))
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                stack.append((value, cls, method, top, binds))
    return _Partial(out, module_binds, module_fits)


# --------------------------------------------------------------------------------------------------
# Cross-file summary
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassFacts:
    """A class as other files see it: name, qualified bases, methods, manual-optimization flag."""

    name: str
    path: str
    line: int
    bases: tuple[str, ...]
    methods: frozenset[str]
    manual_optimization: bool  # sets automatic_optimization = False (class attribute or self.)


@dataclass(frozen=True)
class FileFacts:
    """The cross-file facts of one file."""

    path: str
    classes: tuple[ClassFacts, ...] = ()
    logged: frozenset[str] = frozenset()
    log_patterns: tuple[str, ...] = ()  # regexes for f-string names
    dynamic_logging: bool = False  # a name that cannot be known statically was logged
    fitted: frozenset[str] = frozenset()  # names of classes passed to .fit(...)


_LOG_METHODS = ("log", "log_dict")


def fstring_pattern(node: ast.JoinedStr) -> str:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(re.escape(value.value))
        else:
            parts.append(".+")
    return "".join(parts)


def log_calls(calls: Iterable[CallSite]) -> Iterator[CallSite]:
    """`self.log(...)`/`self.log_dict(...)` and `pl_module.log(...)` style calls."""
    for site in calls:
        func = site.call.func
        if isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS and isinstance(func.value, ast.Name):
            if func.value.id == "self" or (site.method is not None and _is_module_param(site.method, func.value.id)):
                yield site


def _is_module_param(method: ast.AST, name: str) -> bool:
    """True when `name` is the pl_module parameter of a Callback hook (trainer, pl_module, ...)."""
    if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    params = method.args.posonlyargs + method.args.args
    return len(params) >= 3 and params[2].arg == name


def file_facts(path: str, tree: ast.Module, sc: Scan, imports: dict[str, str]) -> FileFacts:
    """Summarise a scanned file for the workspace index."""
    classes = []
    for info in sc.classes:
        bases = tuple(q for q in (qualify(b, imports) for b in info.node.bases) if q)
        # `configure_optimizers = make_optimizers` defines the hook as much as a def does
        defined = frozenset(info.methods) | frozenset(info.assigns)
        classes.append(ClassFacts(info.node.name, path, info.node.lineno, bases, defined,
                                  sets_manual_optimization(info, sc)))
    logged: set[str] = set()
    patterns: list[str] = []
    dynamic = False
    for site in sc.log_sites():
        call = site.call
        assert isinstance(call.func, ast.Attribute)
        if call.func.attr == "log":
            name = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
            names = [name] if name is not None else []
        else:
            arg = call.args[0] if call.args else next(
                (k.value for k in call.keywords if k.arg == "dictionary"), None)
            if isinstance(arg, ast.Dict) and all(k is not None for k in arg.keys):
                names = list(arg.keys)  # type: ignore[arg-type]
            else:
                dynamic = True
                names = []
        for name in names:
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                logged.add(name.value)
            elif isinstance(name, ast.JoinedStr):
                patterns.append(fstring_pattern(name))
            else:
                dynamic = True
    fitted: set[str] = set()
    for arg, binds in sc.fit_args:
        if isinstance(arg, ast.Call) and (callee := dotted(arg.func)):
            fitted.add(callee.split(".")[-1])
        elif isinstance(arg, ast.Name) and arg.id in binds:
            fitted.add(binds[arg.id])
    return FileFacts(path, tuple(classes), frozenset(logged), tuple(patterns), dynamic, frozenset(fitted))


def sets_manual_optimization(info: ClassNode, sc: Scan) -> bool:
    """Whether the class turns automatic optimization off (attribute, `self.` assignment or property)."""
    value = info.assigns.get("automatic_optimization")
    if value is not None and not (isinstance(value, ast.Constant) and value.value is True):
        return True
    if "automatic_optimization" in info.methods:
        return True  # a property override: trust the user
    return id(info.node) in sc.manual_classes


@dataclass(frozen=True)
class Resolved:
    """A class with its inheritance resolved across the workspace."""

    kind: str | None  # module | datamodule | callback | None
    methods: frozenset[str]  # defined by the class or a workspace base (not Lightning's own)
    manual_optimization: bool
    complete: bool  # every base is either Lightning's, a workspace class, or `object`


class Project:
    """The workspace index the rules consult: every file's `FileFacts`, keyed by path."""

    def __init__(self) -> None:
        self.files: dict[str, FileFacts] = {}
        self._by_name: dict[str, list[ClassFacts]] | None = None
        self._logged: tuple[frozenset[str], tuple[re.Pattern[str], ...], bool] | None = None

    def update(self, facts: FileFacts) -> bool:
        """Store a file's facts; True when something other files' findings depend on changed."""
        old = self.files.get(facts.path)
        self.files[facts.path] = facts
        self._by_name = None
        self._logged = None
        return old != facts

    def remove(self, path: str) -> bool:
        self._by_name = None
        self._logged = None
        return self.files.pop(path, None) is not None

    # ---- classes ----
    def classes_named(self, name: str) -> list[ClassFacts]:
        if self._by_name is None:
            by: dict[str, list[ClassFacts]] = {}
            for facts in self.files.values():
                for cls in facts.classes:
                    by.setdefault(cls.name, []).append(cls)
            self._by_name = by
        return self._by_name.get(name, [])

    def resolve(self, cls: ClassFacts, _seen: frozenset[str] = frozenset()) -> Resolved:
        """Kind, inherited methods and manual-optimization flag of a class, following workspace bases."""
        kind: str | None = None
        methods = set(cls.methods)
        manual = cls.manual_optimization
        complete = True
        key = f"{cls.path}:{cls.name}:{cls.line}"
        for base in cls.bases:
            last = base.split(".")[-1]
            if is_lightning(base):
                kind = kind or _lightning_kind(base)
                continue
            if base in ("object", "ABC", "abc.ABC", "typing.Generic") or base.startswith("typing."):
                continue
            candidates = [c for c in self.classes_named(last) if f"{c.path}:{c.name}:{c.line}" not in _seen]
            if not candidates:
                complete = False
                continue
            # prefer a base defined in the same file
            parent = next((c for c in candidates if c.path == cls.path and c.line < cls.line), candidates[0])
            sub = self.resolve(parent, _seen | {key})
            kind = kind or sub.kind
            methods |= sub.methods
            manual = manual or sub.manual_optimization
            complete = complete and sub.complete
        return Resolved(kind, frozenset(methods), manual, complete)

    def subclasses_fitted(self, name: str) -> bool:
        """Whether the workspace passes an instance of `name` or of a subclass to `Trainer.fit`."""
        fitted = set().union(*(f.fitted for f in self.files.values())) if self.files else set()
        if name in fitted:
            return True
        return any(self._derives_from(f, name) for f in fitted)

    def fitted_names(self) -> set[str]:
        return set().union(*(f.fitted for f in self.files.values())) if self.files else set()

    def _derives_from(self, name: str, base: str, depth: int = 0) -> bool:
        if depth > 20:
            return False
        for cls in self.classes_named(name):
            for b in cls.bases:
                last = b.split(".")[-1]
                if last == base or self._derives_from(last, base, depth + 1):
                    return True
        return False

    # ---- logged names ----
    def logged(self) -> tuple[frozenset[str], tuple[re.Pattern[str], ...], bool]:
        """All literal logged names, f-string patterns, and whether any name is dynamic."""
        if self._logged is None:
            names: set[str] = set()
            patterns: list[re.Pattern[str]] = []
            dynamic = False
            for facts in self.files.values():
                names |= facts.logged
                patterns.extend(re.compile(p) for p in facts.log_patterns)
                dynamic = dynamic or facts.dynamic_logging
            self._logged = (frozenset(names), tuple(patterns), dynamic)
        return self._logged

    def has_modules(self) -> bool:
        return any(self.resolve(c).kind == "module" for f in self.files.values() for c in f.classes)


def _lightning_kind(qualified: str) -> str | None:
    last = qualified.split(".")[-1]
    if last in BASE_KINDS:
        return BASE_KINDS[last]
    if ".callbacks" in qualified:
        return "callback"  # subclassing a built-in callback (ModelCheckpoint, BasePredictionWriter, ...)
    return None


def fitted_classes(tree: ast.Module, cache: dict[int, Any] | None = None) -> frozenset[str]:
    """Names of classes whose instances a module passes to `.fit(...)` (directly or through a variable).

    A light walk for indexes that do not run `scan` (the language server's workspace index). `cache`
    (per path, kept by the caller) remembers each top-level statement's contribution, so re-indexing a
    tree from `lint.incremental.IncrementalParser` walks only the statements an edit replaced.
    """

    def walk(body: list[ast.stmt] | list[ast.AST], binds: dict[str, str], out: set[str]) -> None:
        for node in body:
            for sub in _walk_scope(node):
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                    walk(list(ast.iter_child_nodes(sub)), {}, out)
                elif isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Call):
                    name = dotted(sub.value.func)
                    if name:
                        for target in sub.targets:
                            if isinstance(target, ast.Name):
                                binds[target.id] = name.split(".")[-1]
                elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "fit":
                    arg = sub.args[0] if sub.args else next((k.value for k in sub.keywords if k.arg == "model"), None)
                    if isinstance(arg, ast.Call) and (name := dotted(arg.func)):
                        out.add(name.split(".")[-1])
                    elif isinstance(arg, ast.Name) and arg.id in binds:
                        out.add(binds[arg.id])

    out: set[str] = set()
    if cache is None:
        walk(list(tree.body), {}, out)
        return frozenset(out)
    # module-level assignments carry from statement to statement: they are part of the key
    binds: dict[str, str] = {}
    fresh: dict[int, Any] = {}
    for node in tree.body:
        before = tuple(binds.items())
        hit = cache.get(id(node))
        if hit is not None and hit[0] is node and hit[1] == before:
            after, found = hit[2], hit[3]
            if after != before:
                binds.clear()
                binds.update(after)
        else:
            found_here: set[str] = set()
            walk([node], binds, found_here)
            after, found = tuple(binds.items()), frozenset(found_here)
        fresh[id(node)] = (node, before, after, found)
        out |= found
    cache.clear()
    cache.update(fresh)
    return frozenset(out)


def _walk_scope(node: ast.AST) -> Iterator[ast.AST]:
    """Nodes of one scope in source order; a function is yielded but not entered."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue  # the caller walks it as its own scope
        stack.extend(reversed(list(ast.iter_child_nodes(current))))
