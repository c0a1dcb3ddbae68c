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
