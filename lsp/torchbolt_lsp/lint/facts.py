"""The rules' per-file node view: `scan(tree)` visits a module once and records imports, classes with
their methods, and every call with the class/method it sits in (the `ast` nodes a rule reports on).

What other files know about a file is not computed here: it is `analysis.facts.FileFacts`, extracted once
and held by the workspace index (`Project` is that index), shared by the server, the rules and the CLI.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..analysis.facts import function_params, log_method
from ..analysis.names import dotted_name
from ..workspace_index import WorkspaceIndex

#: Top-level packages whose classes are Lightning's (or torchbolt's copy of Lightning's API).
LIGHTNING_ROOTS = ("lightning", "pytorch_lightning", "torchbolt")


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


def log_calls(calls: list[CallSite]) -> Iterator[CallSite]:
    """`self.log(...)`/`self.log_dict(...)` and `pl_module.log(...)` style calls (`analysis.facts.log_method`)."""
    for site in calls:
        func = site.call.func
        if type(func) is not ast.Attribute or func.attr not in ("log", "log_dict"):
            continue  # most calls: not worth computing the enclosing method's parameters
        method = site.method
        params = function_params(method) if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef) else ()
        if log_method(func, params, site.cls is not None) is not None:
            yield site


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
# Cross-file facts: one model, `analysis.facts`, held by the workspace index
# --------------------------------------------------------------------------------------------------
# The rules read other files through the same index the server keeps (and `torchbolt check` builds):
# classes resolved across files and installed packages, logged names, what reaches `trainer.fit`.
Project = WorkspaceIndex
