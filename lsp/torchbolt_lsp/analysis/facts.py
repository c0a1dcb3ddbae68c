"""The one extractor of cross-file facts: what every other file, and every feature, may know about a file.

Classes and their bases, hooks defined, whether a class turns automatic optimization off, logged metric
names (with the names Lightning really produces, f-string patterns, and whether a name is dynamic),
Trainer / callback calls with their keyword arguments, `monitor=` references, which classes reach
`trainer.fit/validate/test/predict`, and registered strategy/accelerator names. The workspace index,
the lint rules and `torchbolt check`, the runs (code-lens targets), completion and hover all read these
facts; the lint rules additionally walk their own file's nodes (`lint.facts.scan`).

Extraction is cached per top-level statement (`FactsCache`): an edit re-walks only what it touched.
Positions are LSP positions in the negotiated encoding, computed here from the source text, so the
workspace index can answer navigation requests for files that are not open.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any

from torchbolt import catalog

from .names import KIND_OF_BASE, bindings_from_ast, canonical, dotted_name, module_package, qualify

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
class _NoValue:
    """The value of a keyword that is not a literal (a singleton that survives pickling to the lint worker)."""

    def __repr__(self) -> str:
        return "<not a literal>"

    def __reduce__(self) -> str:
        return "_NO_VALUE"


_NO_VALUE: Any = _NoValue()


@dataclass(frozen=True)
class Span:
    """An LSP range: 0-based line, column in the negotiated position encoding."""

    line: int
    col: int
    end_line: int
    end_col: int

    def contains(self, line: int, col: int) -> bool:
        return (self.line, self.col) <= (line, col) <= (self.end_line, self.end_col)


@dataclass(frozen=True)
class BaseRef:
    """One base class as written (`pl.LightningModule`) and its qualified name through the imports."""

    source: str
    qualified: str | None  # None when not imported (a class of the same file, or unknown)
    span: Span


@dataclass(frozen=True)
class MethodFacts:
    """A method defined in a class body."""

    name: str
    span: Span  # the name
    def_span: Span  # the whole definition
    params: tuple[str, ...]  # without self
    is_async: bool = False


@dataclass(frozen=True)
class ClassFacts:
    """A class definition with what Lightning-related rules need to know."""

    name: str
    span: Span  # the name
    def_span: Span
    bases: tuple[BaseRef, ...]
    methods: tuple[MethodFacts, ...]
    automatic_optimization: bool | None = None  # value assigned to self.automatic_optimization, if literal
    saves_hyperparameters: bool = False
    init_params: tuple[str, ...] = ()
    # names bound in the class body by assignment (`configure_optimizers = make_optimizers` defines a hook)
    attributes: tuple[str, ...] = ()
    # automatic optimization may be off: `= False`, a value known only at run time (`= not manual`), or a
    # property override; the automatic-only rules then stay quiet
    manual_optimization: bool = False

    @property
    def defined(self) -> frozenset[str]:
        """Names the class body defines: methods and class-level assignments."""
        return frozenset(m.name for m in self.methods) | frozenset(self.attributes)

    def method(self, name: str) -> MethodFacts | None:
        return next((m for m in self.methods if m.name == name), None)

    @property
    def direct_kind(self) -> str | None:
        """Lightning kind given by a base imported from a Lightning package (not through other classes)."""
        for base in self.bases:
            name = canonical(base.qualified)
            if name in KIND_OF_BASE:
                return KIND_OF_BASE[name]
        return None


@dataclass(frozen=True)
class LoggedMetric:
    """One name logged by `self.log` / `self.log_dict` (or `pl_module.log` in a callback)."""

    name: str | None  # None when the name is computed (f-string, variable)
    source: str  # the name expression as written
    produced: tuple[str, ...]  # names that really appear in callback_metrics / loggers
    span: Span  # the name literal (or the whole call when the name is dynamic)
    call: str  # "log" | "log_dict"
    class_name: str | None
    hook: str | None  # enclosing method
    on_step: bool | None  # effective value; None when the hook is not in LOG_RULES
    on_epoch: bool | None
    receiver: str = "self"
    note: str = ""
    pattern: str | None = None  # a regex of the names an f-string name can produce

    @property
    def dynamic(self) -> bool:
        """The name is computed at run time and no pattern describes it."""
        return self.name is None and self.pattern is None


@dataclass(frozen=True)
class KeywordFacts:
    """A keyword argument of a call."""

    name: str
    name_span: Span
    value_span: Span
    value_source: str
    value: Any = _NO_VALUE  # the literal value, or _NO_VALUE

    @property
    def has_literal(self) -> bool:
        return self.value is not _NO_VALUE


@dataclass(frozen=True)
class CallFacts:
    """A call of Trainer, a built-in callback or a logger."""

    callee: str  # canonical name
    callee_source: str
    span: Span
    func_span: Span
    keywords: tuple[KeywordFacts, ...]
    positional: tuple[Span, ...]
    has_star_kwargs: bool
    class_name: str | None
    function: str | None

    def keyword(self, name: str) -> KeywordFacts | None:
        return next((k for k in self.keywords if k.name == name), None)


@dataclass(frozen=True)
class MonitorRef:
    """A metric name used as `monitor=` (callbacks) or `"monitor":` (a scheduler config dict)."""

    name: str
    span: Span  # the string literal
    source: str  # "ModelCheckpoint" | "EarlyStopping" | "lr_scheduler" | another callback name
    class_name: str | None
    function: str | None


@dataclass(frozen=True)
class FitRef:
    """A `<trainer>.fit/validate/test/predict(model)` call: what the model expression names.

    `source` is the class expression as written (`Net`, `models.Net`) and `qualified` its name through
    the imports (None for a name of the file itself). `var` is set instead when the model is a
    module-level variable whose value is resolved after the walk.
    """

    fn: str  # "fit" | "validate" | "test" | "predict"
    source: str
    qualified: str | None
    span: Span


@dataclass(frozen=True)
class RunCall:
    """A `<name>.fit/validate/test/predict(...)` call on a plain name (a script's run entry point, when
    `name` holds a Trainer: see `FileFacts.trainer_vars`)."""

    receiver: str  # the name the method is called on
    fn: str  # "fit" | "validate" | "test" | "predict"
    span: Span  # the whole call


@dataclass(frozen=True)
class FileFacts:
    """Everything the index keeps about one file."""

    path: str
    module_name: str
    package: str
    bindings: dict[str, str]
    classes: tuple[ClassFacts, ...] = ()
    logged: tuple[LoggedMetric, ...] = ()
    calls: tuple[CallFacts, ...] = ()
    monitors: tuple[MonitorRef, ...] = ()
    parsed: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    fits: tuple[FitRef, ...] = ()
    registered: tuple[str, ...] = ()  # names given to StrategyRegistry/AcceleratorRegistry.register(...)
    digest: int = 0  # text_digest() of the text these facts were extracted from (reuse them for that text)
    run_calls: tuple[RunCall, ...] = ()  # in source order
    trainer_vars: tuple[str, ...] = ()  # names assigned from a `Trainer(...)` / `x.Trainer(...)` call, anywhere

    def class_named(self, name: str) -> ClassFacts | None:
        return next((c for c in self.classes if c.name == name), None)

    def cross_file_key(self) -> tuple[Any, ...]:
        """What other files' diagnostics can depend on, without positions (an edit that only moves code
        or changes a method body leaves it equal, so other documents are not re-linted). Computed once per
        facts object: every re-index compares the old and new keys, and a big file's key takes a while."""
        key = self.__dict__.get("_cross_file_key")
        if key is None:
            key = self.__dict__["_cross_file_key"] = self._compute_cross_file_key()
        return key

    def __getstate__(self) -> dict[str, Any]:
        # the cached key is not sent along when facts travel to the lint worker
        return {k: v for k, v in self.__dict__.items() if k != "_cross_file_key"}

    def _compute_cross_file_key(self) -> tuple[Any, ...]:
        return (
            self.module_name,
            tuple(sorted(self.bindings.items())),
            tuple((c.name, tuple(b.qualified or b.source for b in c.bases), c.defined, c.manual_optimization,
                   c.init_params) for c in self.classes),
            tuple((m.name, m.pattern, m.class_name, m.receiver, m.produced) for m in self.logged),
            tuple((f.fn, f.source, f.qualified) for f in self.fits),
            self.registered,
        )


# ------------------------------------------------------------------------------------------------
# Metric names Lightning produces
# ------------------------------------------------------------------------------------------------
#: The names a metric logged with on_step=True and on_epoch=True is forked into, after its own (epoch first:
#: the epoch value is the one a monitor usually means).
FORK_SUFFIXES: tuple[str, str] = ("_epoch", "_step")


def forked_names(name: str) -> tuple[str, ...]:
    """A logged name and the names Lightning forks it into when it is logged on step and on epoch."""
    return (name, *(name + suffix for suffix in FORK_SUFFIXES))


def unforked(name: str) -> str | None:
    """The logged name a forked name (`loss_epoch`) comes from, or None when it carries no fork suffix."""
    for suffix in FORK_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def produced_names(
    name: str, hook: str | None, on_step: bool | None, on_epoch: bool | None
) -> tuple[tuple[str, ...], bool | None, bool | None]:
    """Names a `self.log(name, ...)` call produces in `hook`, with the effective on_step / on_epoch.

    Explicit arguments win; otherwise the catalog's LOG_RULES default for the hook applies. When both
    are true Lightning forks the metric into `name_step` and `name_epoch` (callback_metrics also keeps
    the bare name, holding the epoch value). A hook outside LOG_RULES (a helper method) gives the bare
    name and unknown levels.
    """
    rule = catalog.log_rule(hook) if hook else None
    step = on_step if on_step is not None else (rule.default_on_step if rule else None)
    epoch = on_epoch if on_epoch is not None else (rule.default_on_epoch if rule else None)
    if step and epoch:
        return forked_names(name), step, epoch
    return (name,), step, epoch


def text_digest(text: str) -> int:
    """A stable digest of a file's text (the same in every process, unlike hash())."""
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def fstring_pattern(node: ast.JoinedStr) -> str:
    """A regex of the strings an f-string can produce (each replacement field matches anything)."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            parts.append(re.escape(value.value))
        else:
            parts.append(".+")
    return "".join(parts)


#: Methods that run a model through the Trainer, and the model's parameter name in them.
RUN_METHODS = ("fit", "validate", "test", "predict")
#: Registries whose registered names are valid `strategy=` / `accelerator=` values.
REGISTRIES = ("StrategyRegistry", "AcceleratorRegistry", "_StrategyRegistry", "_AcceleratorRegistry")


# ------------------------------------------------------------------------------------------------
# Position conversion
# ------------------------------------------------------------------------------------------------
class _Lines:
    """Converts ast (1-based line, UTF-8 byte column) to LSP (line, column in `encoding`)."""

    def __init__(self, text: str, encoding: str) -> None:
        # split like the tokenizer does (not str.splitlines, which also breaks at \x0c, \x1c, \u2028...)
        self.lines = _LINE_BREAK.split(text)
        self.encoding = encoding

    def segment(self, node: ast.AST) -> str:
        """Source text of a node (ast.get_source_segment re-splits the whole file on every call)."""
        lineno: int | None = getattr(node, "lineno", None)
        end_lineno: int | None = getattr(node, "end_lineno", None)
        col: int | None = getattr(node, "col_offset", None)
        end_col: int | None = getattr(node, "end_col_offset", None)
        if (
            lineno is None
            or end_lineno is None
            or col is None
            or end_col is None
            or not 1 <= lineno <= end_lineno <= len(self.lines)
        ):
            return ""
        raw = [line.encode("utf-8", "surrogatepass") for line in self.lines[lineno - 1 : end_lineno]]
        if len(raw) == 1:
            return raw[0][col:end_col].decode("utf-8", "replace")
        raw[0], raw[-1] = raw[0][col:], raw[-1][:end_col]
        return b"\n".join(raw).decode("utf-8", "replace")

    def col(self, lineno: int, byte_col: int) -> int:
        if not 1 <= lineno <= len(self.lines):
            return max(0, byte_col)
        line = self.lines[lineno - 1]
        if line.isascii() or self.encoding == "utf-8":
            return byte_col
        prefix = line.encode("utf-8", "surrogatepass")[:byte_col].decode("utf-8", "ignore")
        if self.encoding == "utf-32":
            return len(prefix)
        return sum(2 if ord(ch) > 0xFFFF else 1 for ch in prefix)

    def span(self, node: ast.AST) -> Span:
        lineno = getattr(node, "lineno", 1)
        end_lineno = getattr(node, "end_lineno", None) or lineno
        col = getattr(node, "col_offset", 0)
        end_col = getattr(node, "end_col_offset", None)
        end_col = col if end_col is None else end_col
        return Span(lineno - 1, self.col(lineno, col), end_lineno - 1, self.col(end_lineno, end_col))

    def name_span(self, node: ast.AST, name: str, keyword: str) -> Span:
        """Span of the name in `def name` / `class name` (ast only locates the statement)."""
        lineno = getattr(node, "lineno", 1)
        if 1 <= lineno <= len(self.lines):
            raw = self.lines[lineno - 1].encode("utf-8", "surrogatepass")
            start = raw.find(f"{keyword} ".encode(), getattr(node, "col_offset", 0))
            if start >= 0:
                at = raw.find(name.encode(), start + len(keyword) + 1)
                if at >= 0:
                    return Span(
                        lineno - 1,
                        self.col(lineno, at),
                        lineno - 1,
                        self.col(lineno, at + len(name.encode())),
                    )
        return self.span(node)


# ------------------------------------------------------------------------------------------------
# Extraction
# ------------------------------------------------------------------------------------------------
@dataclass
class _StatementFacts:
    """What visiting one top-level statement added, and the import bindings before and after it."""

    line: int  # 0-based first line of the statement (decorators included) when these facts were made
    context: tuple[Any, ...]  # (bindings before, encoding, package): the inputs besides the statement
    bindings_after: tuple[tuple[str, str], ...]
    classes: list[ClassFacts]
    logged: list[LoggedMetric]
    calls: list[CallFacts]
    monitors: list[MonitorRef]
    fits: list[tuple[FitRef, str | None]]  # (ref, module-level variable to resolve after the walk)
    module_vars: list[tuple[str, str]]  # module-level `name = Callee(...)`, in order
    registered: list[str]
    run_calls: list[RunCall]
    trainer_vars: list[str]


@dataclass
class FactsCache:
    """Per-path memory of fact extraction, keyed by each top-level statement's source text.

    A statement's facts depend only on its own lines (and the imports before it, checked separately),
    so a statement whose lines an edit did not touch reuses its facts, moved by as many lines as the
    edit added or removed above it: after a line is inserted at the top of a 20,000-line file only that
    line's statement is walked again. No syntax tree is held here (a tree of a big file is ~50 MB).
    """

    statements: dict[tuple[str, int, int], _StatementFacts] = field(default_factory=dict)
    hits: int = 0  # statements reused (tests read it)


#: Fields of each facts class that can hold a Span (the only thing a line shift changes).
_SPAN_FIELDS: dict[type, tuple[str, ...]] = {}


def _shifted(value: Any, delta: int) -> Any:
    """`value` (a facts object, a Span or a tuple/list of them) with every Span moved by `delta` lines."""
    if isinstance(value, Span):
        return Span(value.line + delta, value.col, value.end_line + delta, value.end_col)
    if isinstance(value, tuple | list):
        return type(value)(_shifted(v, delta) for v in value)
    kind = type(value)
    names = _SPAN_FIELDS.get(kind)
    if names is None:
        if not dataclasses.is_dataclass(kind):
            return value
        names = _SPAN_FIELDS[kind] = tuple(
            f.name for f in dataclasses.fields(kind) if re.search(r"Span|Facts|Ref|RunCall", str(f.type)))
    return dataclasses.replace(value, **{name: _shifted(getattr(value, name), delta) for name in names})


def _statement_key(stmt: ast.stmt, lines: list[str]) -> tuple[tuple[str, int, int], int]:
    """(cache key, 0-based first line) of a top-level statement: its whole lines (decorators included) and
    where it starts and ends within them (two statements may share a line: `a = 1; b = 2`)."""
    first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", ()))])
    last = stmt.end_lineno or stmt.lineno
    return ("\n".join(lines[first - 1:last]), stmt.col_offset, stmt.end_col_offset or 0), first - 1


def _move(facts: _StatementFacts, line: int) -> _StatementFacts:
    """A statement's cached facts for the same statement starting at `line` instead."""
    delta = line - facts.line
    return dataclasses.replace(
        facts, line=line, classes=_shifted(facts.classes, delta), logged=_shifted(facts.logged, delta),
        calls=_shifted(facts.calls, delta), monitors=_shifted(facts.monitors, delta),
        fits=[(_shifted(ref, delta), var) for ref, var in facts.fits], run_calls=_shifted(facts.run_calls, delta))


def extract_facts(
    tree: ast.Module | None,
    text: str,
    path: str = "",
    module_name: str = "",
    is_package: bool = False,
    encoding: str = "utf-16",
    cache: FactsCache | None = None,
) -> FileFacts:
    """Facts of one parsed file. `tree` None (unparseable) gives empty facts marked `parsed=False`.

    With a `cache` (an open document re-indexed after each edit), statements seen before are not
    visited again; the result is the same as without it.
    """
    package = module_package(module_name, is_package)
    if tree is None:
        return FileFacts(path, module_name, package, {}, parsed=False)
    bindings = bindings_from_ast(tree, package)
    visitor = _Visitor(dict(bindings), _Lines(text, encoding), text, package)
    visitor.visit_body_cached(tree.body, cache if cache is not None else FactsCache(), (encoding, package))
    return FileFacts(
        path,
        module_name,
        package,
        bindings,
        tuple(visitor.classes),
        tuple(visitor.logged),
        tuple(visitor.calls),
        tuple(visitor.monitors),
        fits=tuple(visitor.fits),
        registered=tuple(dict.fromkeys(visitor.registered)),
        digest=text_digest(text),
        run_calls=tuple(visitor.run_calls),
        trainer_vars=tuple(dict.fromkeys(visitor.trainer_vars)),
    )


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except Exception:  # literal_eval raises many types (ValueError, TypeError, SyntaxError, RecursionError)
        return _NO_VALUE


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args)]
    if a.vararg:
        names.append("*" + a.vararg.arg)
    names += [p.arg for p in a.kwonlyargs]
    if a.kwarg:
        names.append("**" + a.kwarg.arg)
    return tuple(names)


def log_method(func: ast.expr, method_params: tuple[str, ...], in_class: bool) -> str | None:
    """"log" / "log_dict" when a call logs a metric through the LightningModule, else None.

    `self.log(...)` in a class, and `<module>.log(...)` in a callback hook `hook(self, trainer, pl_module,
    ...)` whatever the module parameter is called (`module`, `model`); `pl_module.log` anywhere.
    `method_params` are the enclosing class method's parameters, self included. The one definition of
    "this call logs" for the index, the rules and the completions.
    """
    if not (isinstance(func, ast.Attribute) and func.attr in ("log", "log_dict") and isinstance(func.value, ast.Name)):
        return None
    receiver = func.value.id
    if receiver == "self":
        return func.attr if in_class else None
    if receiver == "pl_module":
        return func.attr
    params = method_params
    if in_class and len(params) >= 3 and params[0] == "self" and params[2] == receiver:
        return func.attr
    return None


def function_params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...]:
    """Parameter names of a def (self included; `*args` / `**kwargs` with their stars)."""
    return _params(fn)


def _model_callee(func: ast.expr) -> str | None:
    """The class a model-building call names: `Net(...)`, `models.Net(...)`, `Net.load_from_checkpoint(...)`."""
    callee = dotted_name(func)
    if callee is not None and callee.endswith(".load_from_checkpoint"):
        callee = callee.rpartition(".")[0]
    return callee


def _str_const(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


#: Node types that hold nothing the extractor looks for: never descended into.
_DEEP_RECURSION_LIMIT = 20_000  # for the retry of a statement nested too deep for the default limit
_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.Name, ast.Constant)


class _Visitor(ast.NodeVisitor):
    def __init__(self, bindings: dict[str, str], lines: _Lines, text: str, package: str = "") -> None:
        self._handlers: dict[type, Any] = {}
        self.bindings = bindings
        self.package = package
        self.lines = lines
        self.text = text
        self.classes: list[ClassFacts] = []
        self.logged: list[LoggedMetric] = []
        self.calls: list[CallFacts] = []
        self.monitors: list[MonitorRef] = []
        self._class: list[ast.ClassDef] = []
        self._method: str | None = None  # the method of the innermost class (nested functions keep it)
        self._method_params: tuple[str, ...] = ()
        self._class_state: list[dict[str, Any]] = []
        self.fits: list[FitRef] = []
        self.registered: list[str] = []
        self.run_calls: list[RunCall] = []
        self.trainer_vars: list[str] = []
        # `name = Callee(...)` per function scope (innermost last); module level is resolved after the walk
        self._scopes: list[dict[str, str]] = []
        self._pending_fits: list[tuple[FitRef, str | None]] = []
        self._module_vars: list[tuple[str, str]] = []

    # A faster walk than ast.NodeVisitor's: handlers looked up once per node type, and leaves that hold
    # nothing this visitor looks for (names, constants, operators) never visited.
    def visit(self, node: ast.AST) -> Any:
        kind = type(node)
        method = self._handlers.get(kind)
        if method is None:
            method = getattr(self, "visit_" + kind.__name__, None) or self.generic_visit
            self._handlers[kind] = method
        return method(node)

    def generic_visit(self, node: ast.AST) -> None:
        for name in node._fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST) and not isinstance(item, _LEAVES):
                        self.visit(item)
            elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                self.visit(value)

    def visit_body_cached(self, body: list[ast.stmt], cache: FactsCache, context: tuple[Any, ...]) -> None:
        """Visit a module's statements like `visit(module)`, reusing the cached facts of unchanged ones.

        Between top-level statements the visitor's only state is the import bindings (an import inside
        a function binds for the code after it), so a statement's facts depend on the statement, the
        bindings before it and the position encoding / package; all are part of the cache key.
        """
        fresh: dict[tuple[str, int, int], _StatementFacts] = {}
        module_vars: dict[str, str] = {}
        for stmt in body:
            before = tuple(self.bindings.items())
            key = (before, *context)
            text_key, line = _statement_key(stmt, self.lines.lines)
            hit = cache.statements.get(text_key)
            if hit is not None and hit.context == key:
                cache.hits += 1
                if hit.line != line:  # the same lines, moved by an edit above them
                    hit = _move(hit, line)
                self.classes.extend(hit.classes)
                self.logged.extend(hit.logged)
                self.calls.extend(hit.calls)
                self.monitors.extend(hit.monitors)
                self.registered.extend(hit.registered)
                self.run_calls.extend(hit.run_calls)
                self.trainer_vars.extend(hit.trainer_vars)
                if hit.bindings_after != before:
                    self.bindings.clear()
                    self.bindings.update(hit.bindings_after)
            else:
                marks = (len(self.classes), len(self.logged), len(self.calls), len(self.monitors),
                         len(self.registered), len(self.run_calls), len(self.trainer_vars))
                self._visit_statement(stmt, marks, before)
                hit = _StatementFacts(
                    line,
                    key,
                    tuple(self.bindings.items()),
                    self.classes[marks[0]:],
                    self.logged[marks[1]:],
                    self.calls[marks[2]:],
                    self.monitors[marks[3]:],
                    self._pending_fits,
                    self._module_vars,
                    self.registered[marks[4]:],
                    self.run_calls[marks[5]:],
                    self.trainer_vars[marks[6]:],
                )
            fresh[text_key] = hit
            # module-level variables carry from statement to statement: resolved here, never cached
            module_vars.update(hit.module_vars)
            for ref, var in hit.fits:
                if var is None:
                    self.fits.append(ref)
                elif var in module_vars:
                    callee = module_vars[var]
                    self.fits.append(FitRef(ref.fn, callee, qualify(callee, self.bindings), ref.span))
        cache.statements = fresh  # statements gone from the module are forgotten

    def _visit_statement(self, stmt: ast.stmt, marks: tuple[int, ...], before: tuple[tuple[str, str], ...]) -> None:
        """Visit one top-level statement. Absurdly nested code (`1+1+...` thousands deep, which `ast` parses)
        gets a second try with a deeper recursion limit (Python-to-Python calls do not use the C stack on
        3.11+), and if even that fails the statement contributes no facts instead of failing the file."""
        for limit in (None, _DEEP_RECURSION_LIMIT):
            self._pending_fits, self._module_vars, self._scopes = [], [], []
            old = sys.getrecursionlimit()
            try:
                if limit is not None and limit > old:
                    sys.setrecursionlimit(limit)
                self.visit(stmt)
                return
            except RecursionError:
                for facts, mark in zip((self.classes, self.logged, self.calls, self.monitors, self.registered,
                                        self.run_calls, self.trainer_vars), marks, strict=True):
                    del facts[mark:]
                self.bindings.clear()
                self.bindings.update(before)
            finally:
                sys.setrecursionlimit(old)
        self._pending_fits, self._module_vars, self._scopes = [], [], []

    # --------------------------------------------------------------------------------- structure
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        bases = []
        for b in node.bases:
            src = dotted_name(b) or ast.unparse(b)
            bases.append(
                BaseRef(src, qualify(src, self.bindings) if dotted_name(b) else None, self.lines.span(b))
            )
        methods = [
            MethodFacts(
                s.name,
                self.lines.name_span(s, s.name, "def"),
                self.lines.span(s),
                _params(s)[1:],
                isinstance(s, ast.AsyncFunctionDef),
            )
            for s in node.body
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        init = next((m for m in methods if m.name == "__init__"), None)
        attributes: list[str] = []
        state: dict[str, Any] = {"auto": None, "save_hp": False, "manual": False}
        saved = (self._method, self._method_params)
        self._class.append(node)
        self._class_state.append(state)
        self._method, self._method_params = None, ()
        for stmt in node.body:
            targets = (stmt.targets if isinstance(stmt, ast.Assign)
                       else [stmt.target] if isinstance(stmt, ast.AnnAssign) and stmt.value is not None else [])
            attributes.extend(t.id for t in targets if isinstance(t, ast.Name))
            # class-level `automatic_optimization = False`
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and any(
                isinstance(t, ast.Name) and t.id == "automatic_optimization" for t in targets
            ):
                self._automatic_optimization(state, stmt.value)
            self.visit(stmt)
        self._class.pop()
        self._class_state.pop()
        self._method, self._method_params = saved
        self.classes.append(
            ClassFacts(
                node.name,
                self.lines.name_span(node, node.name, "class"),
                self.lines.span(node),
                tuple(bases),
                tuple(methods),
                state["auto"],
                state["save_hp"],
                init.params if init else (),
                tuple(attributes),
                state["manual"] or any(m.name == "automatic_optimization" for m in methods),
            )
        )
        for deco in node.decorator_list:
            self.visit(deco)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self._scopes.append({})
        if self._method is None and not isinstance(node, ast.Lambda):
            saved = (self._method, self._method_params)
            self._method, self._method_params = node.name, _params(node)
            self.generic_visit(node)
            self._method, self._method_params = saved
        else:
            self.generic_visit(node)
        self._scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function
    visit_Lambda = _visit_function

    @staticmethod
    def _automatic_optimization(state: dict[str, Any], value_node: ast.AST | None) -> None:
        value = _literal(value_node) if value_node is not None else None
        if isinstance(value, bool):
            state["auto"] = value
        if value is not True:
            state["manual"] = True  # False, or only known at run time (`not manual`): manual is possible

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._class_state:
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "automatic_optimization"
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    self._automatic_optimization(self._class_state[-1], node.value)
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == "self" and isinstance(node.value, ast.Call)):
                    prefix = _str_const(self._kw(node.value, "prefix"))
                    postfix = _str_const(self._kw(node.value, "postfix"))
                    if prefix is not None or postfix is not None:  # a MetricCollection (or its clone)
                        collections = self._class_state[-1].setdefault("collections", {})
                        collections[target.attr] = (prefix or "", postfix or "")
        if isinstance(node.value, ast.Call):
            func = node.value.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)) == "Trainer":
                self.trainer_vars.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node.value, ast.Call) and (callee := _model_callee(node.value.func)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    if self._scopes:
                        self._scopes[-1][target.id] = callee
                    elif not self._class:
                        self._module_vars.append((target.id, callee))
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        # imports inside functions (`def main(): import lightning as L`) bind for the code after them
        self.bindings.update(bindings_from_ast(ast.Module(body=[node], type_ignores=[])))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.bindings.update(bindings_from_ast(ast.Module(body=[node], type_ignores=[]), self.package))

    # ------------------------------------------------------------------------------------ calls
    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            receiver = func.value.id
            if log_method(func, self._method_params, bool(self._class)) is not None:
                self._log_call(node, func.attr, "self" if receiver == "self" else "pl_module")
            if func.attr == "save_hyperparameters" and receiver == "self" and self._class_state:
                self._class_state[-1]["save_hp"] = True
            if func.attr == "register" and receiver in REGISTRIES:
                arg = node.args[0] if node.args else self._kw(node, "name")
                if (registered := _str_const(arg)) is not None:
                    self.registered.append(registered)
        if isinstance(func, ast.Attribute) and func.attr in RUN_METHODS:
            self._run_call(node, func.attr)
            if isinstance(func.value, ast.Name):
                self.run_calls.append(RunCall(func.value.id, func.attr, self.lines.span(node)))
        source = dotted_name(func)
        name = canonical(qualify(source, self.bindings)) if source else None
        if name is not None and name not in ("LightningModule", "LightningDataModule", "Callback"):
            self._lightning_call(node, name, source or "")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        keys = {_str_const(k): (k, v) for k, v in zip(node.keys, node.values, strict=False) if k is not None}
        if "monitor" in keys and ("scheduler" in keys or self._method == "configure_optimizers"):
            value = keys["monitor"][1]
            text = _str_const(value)
            if text is not None:
                self.monitors.append(
                    MonitorRef(text, self.lines.span(value), "lr_scheduler", self._class_name, self._method)
                )
        self.generic_visit(node)

    @property
    def _class_name(self) -> str | None:
        return self._class[-1].name if self._class else None

    def _kw(self, node: ast.Call, name: str) -> ast.AST | None:
        return next((k.value for k in node.keywords if k.arg == name), None)

    def _producer_pattern(self, expr: ast.AST) -> str | None:
        """Names a known producer of metric dicts gives: Lightning's `grad_norm(...)` keys, or a torchmetrics
        `MetricCollection` whose prefix/postfix is visible in the class (`self.m = MetricCollection(...,
        prefix="val_")` or `.clone(prefix=...)`), called, computed or passed as is."""
        if isinstance(expr, ast.Name):  # `metrics = self.val_metrics(preds, y)` earlier in the method
            bound = next((scope[expr.id] for scope in reversed(self._scopes) if expr.id in scope), None)
            if bound is None:
                return None
            if bound.rpartition(".")[2] == "grad_norm":
                return r"grad_.+_norm.*"
            expr = ast.parse(bound, mode="eval").body
        if isinstance(expr, ast.Call):
            if (dotted_name(expr.func) or "").rpartition(".")[2] == "grad_norm":
                return r"grad_.+_norm.*"
            expr = expr.func
        if isinstance(expr, ast.Attribute) and expr.attr in ("compute", "forward"):
            expr = expr.value
        if (isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "self"
                and self._class_state):
            affixes = self._class_state[-1].get("collections", {}).get(expr.attr)
            if affixes is not None:
                prefix, postfix = affixes
                return re.escape(prefix) + ".+" + re.escape(postfix)
        return None

    def _run_call(self, node: ast.Call, fn: str) -> None:
        arg = node.args[0] if node.args else self._kw(node, "model")
        if arg is None:
            return
        span = self.lines.span(arg)
        if isinstance(arg, ast.Call) and (callee := _model_callee(arg.func)):
            self._pending_fits.append((FitRef(fn, callee, qualify(callee, self.bindings), span), None))
        elif isinstance(arg, ast.Name):
            for scope in reversed(self._scopes):
                if arg.id in scope:
                    callee = scope[arg.id]
                    self._pending_fits.append((FitRef(fn, callee, qualify(callee, self.bindings), span), None))
                    return
            self._pending_fits.append((FitRef(fn, arg.id, None, span), arg.id))

    def _log_call(self, node: ast.Call, attr: str, receiver: str) -> None:
        hook = self._method
        step_node, epoch_node = self._kw(node, "on_step"), self._kw(node, "on_epoch")
        explicit_step = _literal(step_node) if step_node is not None else None
        explicit_epoch = _literal(epoch_node) if epoch_node is not None else None
        explicit_step = explicit_step if isinstance(explicit_step, bool) else None
        explicit_epoch = explicit_epoch if isinstance(explicit_epoch, bool) else None
        note = ""
        if hook and "dataloader_idx" in self._method_params:
            note = (
                "With several eval dataloaders Lightning appends '/dataloader_idx_N' to the name "
                "(not predictable statically)."
            )
        names: list[tuple[str | None, str, ast.AST]] = []
        if attr == "log":
            arg = node.args[0] if node.args else self._kw(node, "name")
            if arg is None:
                return
            names.append((_str_const(arg), self.lines.segment(arg) or "?", arg))
        else:
            arg = node.args[0] if node.args else self._kw(node, "dictionary")
            if isinstance(arg, ast.Dict):
                for key, value in zip(arg.keys, arg.values, strict=True):
                    if key is not None:
                        names.append((_str_const(key), self.lines.segment(key) or "?", key))
                    else:  # `{**metrics}`: whatever `metrics` holds
                        names.append((None, self.lines.segment(value) or "?", value))
            elif isinstance(arg, ast.Call) and dotted_name(arg.func) == "dict":
                for kw in arg.keywords:
                    if kw.arg:
                        names.append((kw.arg, kw.arg, kw))
            elif arg is not None:
                names.append((None, self.lines.segment(arg) or "?", arg))
        for name, source, at in names:
            pattern = fstring_pattern(at) if isinstance(at, ast.JoinedStr) else None
            if name is None and pattern is None and attr == "log_dict":
                pattern = self._producer_pattern(at)
            if name is None:
                produced: tuple[str, ...] = ()
                step = explicit_step
                epoch = explicit_epoch
            else:
                produced, step, epoch = produced_names(name, hook, explicit_step, explicit_epoch)
            self.logged.append(
                LoggedMetric(
                    name,
                    source,
                    produced,
                    self.lines.span(at),
                    attr,
                    self._class_name,
                    hook,
                    step,
                    epoch,
                    receiver,
                    note,
                    pattern,
                )
            )

    def _lightning_call(self, node: ast.Call, name: str, source: str) -> None:
        keywords = []
        for kw in node.keywords:
            if kw.arg is None:
                continue
            value_span = self.lines.span(kw.value)
            # ast gives the keyword node's span from the name; the name is the first len(arg) chars
            kspan = self.lines.span(kw)
            name_span = Span(kspan.line, kspan.col, kspan.line, kspan.col + len(kw.arg))
            keywords.append(
                KeywordFacts(
                    kw.arg, name_span, value_span, self.lines.segment(kw.value) or "", _literal(kw.value)
                )
            )
        call = CallFacts(
            name,
            source,
            self.lines.span(node),
            self.lines.span(node.func),
            tuple(keywords),
            tuple(self.lines.span(a) for a in node.args),
            any(k.arg is None for k in node.keywords),
            self._class_name,
            self._method,
        )
        self.calls.append(call)
        spec = catalog.CALLBACKS_BY_NAME.get(name)
        if spec is not None and spec.arg("monitor") is not None:
            value: ast.AST | None = self._kw(node, "monitor")
            if value is None:
                position = [a.name for a in spec.args].index("monitor")
                if position < len(node.args):
                    value = node.args[position]
            text = _str_const(value)
            if text is not None and value is not None:
                self.monitors.append(
                    MonitorRef(text, self.lines.span(value), name, self._class_name, self._method)
                )
