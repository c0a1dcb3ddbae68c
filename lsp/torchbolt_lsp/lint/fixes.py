"""Quick fixes: turn a finding's `Fix` request into minimal text edits that keep formatting and comments.

Only called when an editor asks for code actions or `torchbolt check --fix/--diff` runs; never on the
keystroke path. Simple replacements (a literal, a keyword name) are plain text edits; structural ones
(rename a hook, add a method, migrate `*_epoch_end`, drop a call or keyword) run a libcst transformer
over the smallest top-level statement that holds the target, so a fix in a 3,000-line file parses one
class, not the file. The result is diffed against the original to produce the minimal `TextEdit`s.
"""

from __future__ import annotations

import ast
import bisect
import dataclasses
import difflib
import io
import logging
import re
import tokenize
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .engine import DEF_NAME, LINE_END
from .model import Finding, Fix

log = logging.getLogger(__name__)

#: Fix kinds that are plain text replacements of a span.
_TEXT_KINDS = ("replace_expr", "replace_string")
#: Fix kinds done as a text edit when the tokenizer finds their target (libcst otherwise).
_TOKEN_KINDS = ("drop_method_call", "cuda_to_device", "rename_def")
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
# Text helpers (lines as `ast` and LSP count them: \n, \r\n and \r end a line, a form feed does not)
# --------------------------------------------------------------------------------------------------
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _lines_keepends(text: str) -> list[str]:
    return _LINE.findall(text)


def _offsets(source: str) -> list[int]:
    return [0, *(m.end() for m in LINE_END.finditer(source))]


def _index(starts: list[int], line: int, col: int) -> int:
    return starts[line - 1] + col


def apply_edits(source: str, edits: Iterable[TextEdit]) -> str:
    """Apply non-overlapping edits (any order) to a text, in one pass over it."""
    starts = _offsets(source)
    spans = sorted((_index(starts, e.line, e.col), _index(starts, e.end_line, e.end_col), e.new_text)
                   for e in edits)
    pieces: list[str] = []
    pos = 0
    for a, b, text in spans:
        if a < pos:
            raise FixError("overlapping edits")
        pieces.append(source[pos:a])
        pieces.append(text)
        pos = b
    pieces.append(source[pos:])
    return "".join(pieces)


def edits_between(old: str, new: str) -> list[TextEdit]:
    """Minimal edits turning `old` into `new`: changed line blocks, trimmed to the differing characters."""
    if old == new:
        return []
    a = _lines_keepends(old)
    b = _lines_keepends(new)
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
    while line < len(lines) and offset >= len(lines[line]) and lines[line].endswith(("\n", "\r")):
        offset -= len(lines[line])
        line += 1
    return line + 1, offset


def newline_of(text: str) -> str:
    """The text's line ending (its first one; \n for a one-line text)."""
    m = LINE_END.search(text)
    return m.group(0) if m else "\n"


def restore_newlines(raw: str, normalized: str, new: str) -> str:
    """Carry the changes from `normalized` (raw with \n line ends) to `new` over to `raw`, keeping every
    untouched line ending as it was and writing new lines with the file's own line ending."""
    newline = newline_of(raw)
    edits = [dataclasses.replace(e, new_text=e.new_text.replace("\n", newline))
             for e in edits_between(normalized, new)]
    return apply_edits(raw, edits)


def _span_text(source: str, starts: list[int], span: Sequence[int]) -> str:
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


def apply_fixes(source: str, requests: Sequence[tuple[Finding, Fix]], applied: list[Fix] | None = None) -> str:
    """Apply as many of the requested fixes as do not collide; the rest wait for the next round.

    The fixes that took effect are appended to `applied`. Line endings are kept: the fixes run on a
    \n-normalised copy and only the changed lines are carried back (new lines get the file's ending).
    """
    if "\r" not in source:
        return _apply_fixes(source, requests, applied)
    normalized = LINE_END.sub("\n", source)
    new = _apply_fixes(normalized, requests, applied)
    return source if new == normalized else restore_newlines(source, normalized, new)


def _apply_fixes(source: str, requests: Sequence[tuple[Finding, Fix]], applied: list[Fix] | None) -> str:
    done: list[Fix] = []
    text_edits: list[tuple[TextEdit, Fix]] = []
    by_region: dict[tuple[int, int], list[Fix]] = {}
    tree = ast.parse(source)
    regions = _regions(tree)
    starts = _offsets(source)
    module_fix: Fix | None = None
    for _finding, fix in requests:
        if fix.kind in _MODULE_KINDS:
            module_fix = module_fix or fix
            continue
        if fix.kind in _TEXT_KINDS:
            span = fix.data["span"]
            text = fix.data["text"] if fix.kind == "replace_expr" else _requote(
                _span_text(source, starts, span), fix.data["value"])
            text_edits.append((TextEdit(span[0], span[1], span[2], span[3], text), fix))
            continue
        if fix.kind in _TOKEN_KINDS and (simple := _token_edit(source, starts, fix)) is not None:
            text_edits.append((simple, fix))  # no libcst needed: thousands of these stay linear and cheap
            continue
        try:
            region = _region_of(regions, _target_line(fix))
        except FixError:
            continue
        by_region.setdefault(region, []).append(fix)
    if module_fix is not None and not by_region and not text_edits:
        try:
            result, ok = _transform_safely(source, [module_fix], 1)
        except FixError:
            return source
        done.extend(ok)
        if applied is not None:
            applied.extend(done)
        return result
    out_lines = _lines_keepends(source)
    rewritten = False
    statements = dict(zip(regions, tree.body, strict=True))
    # rewrite regions bottom-up so earlier line numbers stay valid
    for (first, last), fixes in sorted(by_region.items(), reverse=True):
        if _nesting(statements[(first, last)]) > MAX_CST_NESTING:
            log.info("lines %d-%d nest too deeply for the fixer; left unfixed", first, last)
            continue
        region_src = "".join(out_lines[first - 1:last])
        try:
            new_region, ok = _transform_safely(region_src, fixes, first)
        except FixError:
            continue  # none of this region's fixes apply (e.g. the call is not a statement); others still do
        if new_region != region_src:
            rewritten = True
            done.extend(ok)
        out_lines[first - 1:last] = _lines_keepends(new_region)
    result = "".join(out_lines)
    # text edits carry positions in the original text: apply them only when no region moved lines
    # (otherwise they wait for the next round of fix_all, which re-lints)
    if text_edits and not rewritten:
        kept = _non_overlapping(text_edits)
        result = apply_edits(result, [e for e, _ in kept])
        done.extend(f for _, f in kept)
    for module in sorted({f.data["add_import"] for fs in by_region.values() for f in fs if f.data.get("add_import")}):
        result = add_import(result, module)
    if applied is not None:
        applied.extend(done)
    return result


#: Deeper statements are not given to libcst: its parser slows quadratically there (seconds for a
#: 2,500-term sum) and its native code can overflow the stack, which no `except` catches.
MAX_CST_NESTING = 100


def _nesting(node: ast.AST) -> int:
    """How deep a statement's syntax tree goes (iteratively: the tree may be deeper than Python's stack)."""
    deepest = 0
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_CST_NESTING:
                break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


def _token_edit(source: str, starts: list[int], fix: Fix) -> TextEdit | None:
    """A plain text edit for the fixes that touch one call's tail or one def name, or None to use libcst.

    `x.cuda()` -> `x` (drop_method_call), `x.cuda()` -> `x.to(self.device)` (cuda_to_device), and
    `def training_stpe` -> `def training_step` (rename_def), found with the tokenizer so strings,
    comments and line breaks inside the call are handled like Python does.
    """
    if fix.kind == "rename_def":
        line = int(fix.data["line"])
        start = starts[line - 1] if line - 1 < len(starts) else len(source)
        end = starts[line] if line < len(starts) else len(source)
        m = next((m for m in DEF_NAME.finditer(source[start:end]) if m.group(1) == fix.data["old"]), None)
        return TextEdit(line, m.start(1), line, m.end(1), str(fix.data["new"])) if m else None
    span = fix.data["span"]
    segment = _span_text(source, starts, span)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(segment).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT,
                                    tokenize.DEDENT, tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError):
        return None
    if not tokens or tokens[-1].string != ")":
        return None
    depth, k = 0, len(tokens) - 1
    while k >= 0:  # the "(" that opens the final argument list
        depth += {")": 1, "(": -1}.get(tokens[k].string, 0) if tokens[k].type == tokenize.OP else 0
        if depth == 0:
            break
        k -= 1
    if k < 3 or tokens[k - 1].type != tokenize.NAME or tokens[k - 2].string != ".":
        return None

    def absolute(row: int, col: int) -> tuple[int, int]:
        return (span[0], span[1] + col) if row == 1 else (span[0] + row - 1, col)

    if fix.kind == "drop_method_call":
        start, text = absolute(*tokens[k - 3].end), ""
    else:  # cuda_to_device
        start, text = absolute(*tokens[k - 1].start), "to(self.device)"
    return TextEdit(start[0], start[1], span[2], span[3], text)


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
    lines = _lines_keepends(source)
    lines.insert(after, f"import {module}{newline_of(source)}")
    return "".join(lines)


def _non_overlapping(edits: list[tuple[TextEdit, Fix]]) -> list[tuple[TextEdit, Fix]]:
    kept: list[tuple[TextEdit, Fix]] = []
    for e, fix in sorted(edits, key=lambda item: (item[0].line, item[0].col)):
        if kept and (kept[-1][0].end_line, kept[-1][0].end_col) > (e.line, e.col):
            continue
        kept.append((e, fix))
    return kept


def fix_all(source: str, lint: Callable[[str], list[Finding]], want: Callable[[Finding], bool] = lambda f: True,
            rounds: int = 8, unsafe: bool = False, applied: list[Fix] | None = None) -> str:
    """Apply every wanted fixable finding, re-linting between rounds until nothing fixable is left.

    Only safe fixes unless `unsafe`; the fixes that took effect are appended to `applied`.
    """
    current = source
    for _ in range(rounds):
        requests = []
        for finding in lint(current):
            fix = next((x for x in finding.fixes if x.safe or unsafe), None) if want(finding) else None
            if fix is not None:
                requests.append((finding, fix))
        if not requests:
            break
        new = apply_fixes(current, requests, applied)
        if new == current:
            break
        current = new
    return current


# --------------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------------
def _regions(tree: ast.Module) -> list[tuple[int, int]]:
    out = []
    for stmt in tree.body:
        first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        out.append((first, stmt.end_lineno or stmt.lineno))
    return out


def _region_of(regions: list[tuple[int, int]], line: int) -> tuple[int, int]:
    at = bisect.bisect_right(regions, (line, float("inf"))) - 1
    if at >= 0 and regions[at][0] <= line <= regions[at][1]:
        return regions[at]
    raise FixError(f"no statement at line {line}; re-run the check")


def _target_line(fix: Fix) -> int:
    data = fix.data
    if "span" in data:
        return int(data["span"][0])
    return int(data.get("line") or data["class_line"])


def _transform_safely(region_src: str, fixes: list[Fix], first_line: int) -> tuple[str, list[Fix]]:
    """`_transform`, falling back to one fix at a time when libcst fails on the batch (a fix that
    crashes libcst, or code too deep for it, is skipped; the statement keeps its text)."""
    try:
        return _transform(region_src, fixes, first_line)
    except FixError:
        if len(fixes) == 1:
            raise
    except Exception:  # a libcst crash (RecursionError on deep code, a transformer bug): isolate it
        log.warning("fix of lines %d+ failed; trying the fixes one by one", first_line, exc_info=True)
    text, done = region_src, []
    for fix in fixes:
        try:
            new, ok = _transform(text, [fix], first_line)
        except FixError:
            continue
        except Exception:
            log.warning("fix %s at line %d failed in libcst; left unfixed", fix.kind, first_line, exc_info=True)
            continue
        if len(_lines_keepends(new)) != len(_lines_keepends(text)) and fix is not fixes[-1]:
            # later fixes find their targets by position: apply the rest in the next round
            return new, [*done, *ok]
        text, done = new, [*done, *ok]
    if not done:
        raise FixError("no fix applied")
    return text, done


def _transform(region_src: str, fixes: list[Fix], first_line: int) -> tuple[str, list[Fix]]:
    import libcst as cst  # only here: fixes are on demand
    from libcst.metadata import MetadataWrapper

    from ._cst_fixer import Fixer

    try:
        module = cst.parse_module(region_src)
    except cst.ParserSyntaxError as exc:
        raise FixError(f"cannot parse the code to fix: {exc}") from exc
    fixer = Fixer(fixes, line_offset=first_line - 1)
    new = MetadataWrapper(module, unsafe_skip_copy=True).visit(fixer)
    ok = [f for f in fixes if id(f) in fixer.applied]
    if not ok:
        raise FixError(f"could not apply: {', '.join(f.title for f in fixes)}; the code changed, re-run the check")
    return new.code, ok


def describe(fix: Fix) -> dict[str, Any]:
    """A JSON-friendly form of a fix request (for code-action data and --output-format json)."""
    return {"kind": fix.kind, "title": fix.title, "data": fix.data}
