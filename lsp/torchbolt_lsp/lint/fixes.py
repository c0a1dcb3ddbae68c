"""Quick fixes: turn a finding's `Fix` request into minimal text edits that keep formatting and comments.

Only called when an editor asks for code actions or `torchbolt check --fix/--diff` runs; never on the
keystroke path. Simple replacements (a literal, a keyword name) are plain text edits; structural ones
(rename a hook, add a method, migrate `*_epoch_end`, drop a call or keyword) run a libcst transformer
over the smallest top-level statement that holds the target, so a fix in a 3,000-line file parses one
class, not the file. The result is diffed against the original to produce the minimal `TextEdit`s.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Finding, Fix

#: Fix kinds that are plain text replacements of a span.
_TEXT_KINDS = ("replace_expr", "replace_string")
#: Fix kinds that need the whole module (they touch several top-level statements).
_MODULE_KINDS = ("move_to_fit",)


@dataclass(frozen=True)
class TextEdit:
    """Replace [start, end) with `new_text`. Lines 1-based, columns 0-based characters."""

    line: int
    col: int
    end_line: int
    end_col: int
    new_text: str


class FixError(ValueError):
    """The fix cannot be applied to this text (it changed since the finding, or the target is gone)."""


# --------------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------------
def _offsets(source: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(source):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _index(starts: list[int], line: int, col: int) -> int:
    return starts[line - 1] + col


def apply_edits(source: str, edits: Iterable[TextEdit]) -> str:
    """Apply non-overlapping edits (any order) to a text."""
    starts = _offsets(source)
    spans = sorted(((_index(starts, e.line, e.col), _index(starts, e.end_line, e.end_col), e.new_text)
                    for e in edits), reverse=True)
    out = source
    last = len(source) + 1
    for a, b, text in spans:
        if b > last:
            raise FixError("overlapping edits")
        out = out[:a] + text + out[b:]
        last = a
    return out


def edits_between(old: str, new: str) -> list[TextEdit]:
    """Minimal edits turning `old` into `new`: changed line blocks, trimmed to the differing characters."""
    if old == new:
        return []
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    edits: list[TextEdit] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old_text = "".join(a[i1:i2])
        new_text = "".join(b[j1:j2])
        # trim the common prefix/suffix inside the block so a one-word change is a one-word edit
        p = 0
        while p < min(len(old_text), len(new_text)) and old_text[p] == new_text[p]:
            p += 1
        s = 0
        while s < min(len(old_text), len(new_text)) - p and old_text[-1 - s] == new_text[-1 - s]:
            s += 1
        start = _pos_in(a, i1, p)
        end = _pos_in(a, i1, len(old_text) - s)
        edits.append(TextEdit(start[0], start[1], end[0], end[1], new_text[p:len(new_text) - s]))
    return edits


def _pos_in(lines: Sequence[str], first: int, offset: int) -> tuple[int, int]:
    """(line, col) of a character offset counted from the start of line index `first` (0-based)."""
    line = first
    while line < len(lines) and offset >= len(lines[line]) and lines[line].endswith("\n"):
        offset -= len(lines[line])
        line += 1
    return line + 1, offset


def _span_text(source: str, span: Sequence[int]) -> str:
    starts = _offsets(source)
    return source[_index(starts, span[0], span[1]):_index(starts, span[2], span[3])]


def _requote(original: str, value: str) -> str:
    """A string literal for `value` that keeps the original literal's prefix and quote style."""
    m = re.match(r"^([rRbBuUfF]*)('''|\"\"\"|'|\")", original)
    quote = m.group(2) if m else '"'
    prefix = (m.group(1) if m else "").replace("f", "").replace("F", "")
    if quote in value or "\\" in value:
        return repr(value)
    return f"{prefix}{quote}{value}{quote}"


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------
def fix_edits(source: str, finding: Finding, fix: Fix) -> list[TextEdit]:
    """The minimal edits for one quick fix of one finding."""
    return edits_between(source, apply_fixes(source, [(finding, fix)]))


def apply_fixes(source: str, requests: Sequence[tuple[Finding, Fix]]) -> str:
    """Apply as many of the requested fixes as do not collide; the rest wait for the next round."""
    text_edits: list[TextEdit] = []
    by_region: dict[tuple[int, int], list[Fix]] = {}
    tree = ast.parse(source)
    regions = _regions(tree, source)
    module_fix: Fix | None = None
    for _finding, fix in requests:
        if fix.kind in _MODULE_KINDS:
            module_fix = module_fix or fix
            continue
        if fix.kind in _TEXT_KINDS:
            span = fix.data["span"]
            text = fix.data["text"] if fix.kind == "replace_expr" else _requote(
                _span_text(source, span), fix.data["value"])
            text_edits.append(TextEdit(span[0], span[1], span[2], span[3], text))
            continue
        region = _region_of(regions, _target_line(fix))
        by_region.setdefault(region, []).append(fix)
    if module_fix is not None and not by_region and not text_edits:
        return _transform(source, [module_fix], 1)
    out_lines = source.splitlines(keepends=True)
    rewritten = False
    # rewrite regions bottom-up so earlier line numbers stay valid
    for (first, last), fixes in sorted(by_region.items(), reverse=True):
        region_src = "".join(out_lines[first - 1:last])
        try:
            new_region = _transform(region_src, fixes, first)
        except FixError:
            continue  # none of this region's fixes apply (e.g. the call is not a statement); others still do
        if new_region != region_src:
            rewritten = True
        out_lines[first - 1:last] = new_region.splitlines(keepends=True)
    result = "".join(out_lines)
    # text edits carry positions in the original text: apply them only when no region moved lines
    # (otherwise they wait for the next round of fix_all, which re-lints)
    if text_edits and not rewritten:
        result = apply_edits(result, _non_overlapping(text_edits))
    for module in sorted({f.data["add_import"] for fs in by_region.values() for f in fs if f.data.get("add_import")}):
        result = add_import(result, module)
    return result


def add_import(source: str, module: str) -> str:
    """`import module` after the module docstring and `from __future__` imports (no-op if present)."""
    tree = ast.parse(source)
    if any(isinstance(n, ast.Import) and any(a.name == module and a.asname is None for a in n.names)
           for n in tree.body):
        return source
    after = 0
    for stmt in tree.body:
        is_doc = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(
            stmt.value.value, str) and stmt is tree.body[0]
        if is_doc or (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
            after = stmt.end_lineno or after
        else:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                after = stmt.lineno - 1  # join the existing import block
            break
    lines = source.splitlines(keepends=True)
    lines.insert(after, f"import {module}\n")
    return "".join(lines)


def _non_overlapping(edits: list[TextEdit]) -> list[TextEdit]:
    kept: list[TextEdit] = []
    for e in sorted(edits, key=lambda e: (e.line, e.col)):
        if kept and (kept[-1].end_line, kept[-1].end_col) > (e.line, e.col):
            continue
        kept.append(e)
    return kept


def fix_all(source: str, lint: Callable[[str], list[Finding]], want: Callable[[Finding], bool] = lambda f: True,
            rounds: int = 8) -> str:
    """Apply every wanted fixable finding, re-linting between rounds until nothing fixable is left."""
    current = source
    for _ in range(rounds):
        findings = [f for f in lint(current) if f.fixes and want(f)]
        if not findings:
            break
        new = apply_fixes(current, [(f, f.fixes[0]) for f in findings])
        if new == current:
            break
        current = new
    return current


# --------------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------------
def _regions(tree: ast.Module, source: str) -> list[tuple[int, int]]:
    out = []
    for stmt in tree.body:
        first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        out.append((first, stmt.end_lineno or stmt.lineno))
    return out


def _region_of(regions: list[tuple[int, int]], line: int) -> tuple[int, int]:
    for first, last in regions:
        if first <= line <= last:
            return first, last
    raise FixError(f"no statement at line {line}; re-run the check")


def _target_line(fix: Fix) -> int:
    data = fix.data
    if "span" in data:
        return int(data["span"][0])
    return int(data.get("line") or data["class_line"])


def _transform(region_src: str, fixes: list[Fix], first_line: int) -> str:
    import libcst as cst  # only here: fixes are on demand
    from libcst.metadata import MetadataWrapper

    from ._cst_fixer import Fixer

    try:
        module = cst.parse_module(region_src)
    except cst.ParserSyntaxError as exc:
        raise FixError(f"cannot parse the code to fix: {exc}") from exc
    fixer = Fixer(fixes, line_offset=first_line - 1)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(fixer)
    missing = [f.title for f in fixes if id(f) not in fixer.applied]
    if missing and len(missing) == len(fixes):
        raise FixError(f"could not apply: {', '.join(missing)}; the code changed, re-run the check")
    return new.code


def describe(fix: Fix) -> dict[str, Any]:
    """A JSON-friendly form of a fix request (for code-action data and --output-format json)."""
    return {"kind": fix.kind, "title": fix.title, "data": fix.data}
