"""Where metric values are shown in source: after each `self.log("name", ...)` call (and each key of a
`self.log_dict({...})` literal) and after each `monitor="name"` argument. Pure, on an `ast.Module`."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..analysis.facts import forked_names, function_params, log_method


@dataclass(frozen=True)
class MetricAnchor:
    """A metric name in source: `name_*` are the string literal's ast location, `end_*` where the hint goes
    (1-based line, UTF-8 byte column, as ast reports them)."""

    name: str
    kind: str  # "log" | "log_dict" | "monitor"
    name_line: int
    name_col: int
    name_end_col: int
    end_line: int
    end_col: int


def _str(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _calls(tree: ast.Module) -> list[tuple[ast.Call, tuple[str, ...], bool]]:
    """Every call with its enclosing class method's parameters and whether it sits in a class."""
    out: list[tuple[ast.Call, tuple[str, ...], bool]] = []
    todo: list[tuple[ast.AST, tuple[str, ...], bool]] = [(tree, (), False)]
    while todo:
        node, params, in_class = todo.pop()
        if isinstance(node, ast.Call):
            out.append((node, params, in_class))
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                todo.append((child, (), True))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) and not params:
                todo.append((child, function_params(child), in_class))
            else:
                todo.append((child, params, in_class))
    return out


def metric_anchors(tree: ast.Module | None) -> list[MetricAnchor]:
    """Every literal metric name logged or monitored in the module, in source order."""
    if tree is None:
        return []
    out: list[MetricAnchor] = []
    for node, params, in_class in _calls(tree):
        func = node.func
        if log_method(func, params, in_class) is not None:
            end_line, end_col = node.end_lineno or node.lineno, node.end_col_offset or node.col_offset
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg in ("name", "dictionary")), None)
            if func.attr == "log":
                name = _str(first)
                if name is not None and first is not None:
                    out.append(MetricAnchor(name, "log", first.lineno, first.col_offset,
                                            first.end_col_offset or first.col_offset, end_line, end_col))
            elif isinstance(first, ast.Dict):
                for key in first.keys:
                    name = _str(key)
                    if name is not None and key is not None:
                        out.append(MetricAnchor(name, "log_dict", key.lineno, key.col_offset,
                                                key.end_col_offset or key.col_offset, end_line, end_col))
        for kw in node.keywords:
            name = _str(kw.value) if kw.arg == "monitor" else None
            if name is not None:
                v = kw.value
                out.append(MetricAnchor(name, "monitor", v.lineno, v.col_offset, v.end_col_offset or v.col_offset,
                                        v.end_lineno or v.lineno, v.end_col_offset or v.col_offset))
    out.sort(key=lambda a: (a.end_line, a.end_col, a.name_line, a.name_col))
    return out


def candidate_names(name: str) -> tuple[str, ...]:
    """Names a logged metric may appear under (on_step and on_epoch both true fork it)."""
    return forked_names(name)


@dataclass(frozen=True)
class LrAnchor:
    """An `lr=` argument in a class's `configure_optimizers` (ast positions: 1-based lines, UTF-8 byte
    columns). `literal` is the number written there (rewritable), else `source` is the expression and
    `attr` the attribute it reads (`self.hparams.lr` -> "lr"), `where` where that value is set."""

    line: int
    col: int
    end_line: int
    end_col: int
    source: str
    literal: float | None
    attr: str | None = None
    where: str | None = None


def _self_attr(node: ast.AST) -> str | None:
    """`lr` for `self.lr`, `self.hparams.lr`, `self.hparams["lr"]`, else None."""
    if isinstance(node, ast.Attribute):
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id == "self":
            return node.attr
        if (isinstance(owner, ast.Attribute) and owner.attr == "hparams" and isinstance(owner.value, ast.Name)
                and owner.value.id == "self"):
            return node.attr
    if isinstance(node, ast.Subscript):
        owner, key = node.value, node.slice
        if (isinstance(owner, ast.Attribute) and owner.attr == "hparams" and isinstance(owner.value, ast.Name)
                and owner.value.id == "self" and isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return key.value
    return None


def _where_set(cls: ast.ClassDef, attr: str) -> str:
    """Where the value behind `self.<attr>` / `self.hparams.<attr>` is chosen, for a hint to say."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is not None:
        args = init.args
        positional = [*args.posonlyargs, *args.args]
        # defaults belong to the last positional parameters
        with_default = [a.arg for a in positional][len(positional) - len(args.defaults):]
        defaults: dict[str, ast.expr] = dict(zip(with_default, args.defaults, strict=True))
        defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None})
        if attr in defaults:
            return f"the default of {attr} in __init__ (line {defaults[attr].lineno}) or --model.{attr}"
        if attr in [a.arg for a in (*positional, *args.kwonlyargs)]:
            return f"the {attr} argument the model is built with (--model.{attr})"
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign) and any(_self_attr(t) == attr for t in node.targets):
            return f"self.{attr} = ... (line {node.lineno})"
    return f"where self.{attr} is set"


#: torch.optim's optimizers: each takes the learning rate as its second positional parameter.
TORCH_OPTIMIZERS = frozenset({
    "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "ASGD", "LBFGS", "Muon", "NAdam", "RAdam",
    "RMSprop", "Rprop", "SGD", "SparseAdam"})


def _callee_name(func: ast.expr) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _lr_value(node: ast.Call) -> ast.expr | None:
    """The learning rate a call passes: its `lr=` keyword, or the second positional argument of a
    torch.optim optimizer (`SGD(params, 0.1)`)."""
    for kw in node.keywords:
        if kw.arg == "lr":
            return kw.value
    if _callee_name(node.func) in TORCH_OPTIMIZERS and len(node.args) >= 2 \
            and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
        return node.args[1]
    return None


def lr_anchors(tree: ast.Module | None, class_name: str, text: str) -> list[LrAnchor]:
    """Every learning rate passed by a call in `class_name.configure_optimizers` (an `lr=` keyword, or a
    torch.optim optimizer's positional one), in source order."""
    if tree is None:
        return []
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    method = next((n for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                   and n.name == "configure_optimizers"), None) if cls is not None else None
    if cls is None or method is None:
        return []
    out: list[LrAnchor] = []
    for node in ast.walk(method):
        if not isinstance(node, ast.Call):
            continue
        v = _lr_value(node)
        if v is None:
            continue
        source = ast.get_source_segment(text, v) or ""
        literal = v.value if isinstance(v, ast.Constant) and isinstance(v.value, (int, float)) \
            and not isinstance(v.value, bool) else None
        attr = _self_attr(v)
        out.append(LrAnchor(v.lineno, v.col_offset, v.end_lineno or v.lineno, v.end_col_offset or v.col_offset,
                            source, float(literal) if literal is not None else None, attr,
                            _where_set(cls, attr) if attr else None))
    out.sort(key=lambda a: (a.line, a.col))
    return out
