"""Re-parse only the top-level statements an edit touched (the editor's common case).

Typing inside a method changes one top-level statement (its class) and usually not the number of
lines. Then every other top-level statement's `ast` subtree is still exact, positions included, so
only the touched statements are parsed again (a class of 60 lines instead of 3,000) and spliced into
the previous module; an edit of comments or blank lines between statements keeps the whole tree. Anything else (line count changed, a parse that does not stand alone, nothing
cached) falls back to a full `ast.parse`, so the result always equals `ast.parse(text)`.
"""

from __future__ import annotations

import ast
import bisect
import sys
from collections import OrderedDict
from dataclasses import dataclass, field

from .facts import ScanCache


@dataclass
class _Entry:
    lines: list[str]
    tree: ast.Module
    spans: list[tuple[int, int]]  # (first line incl. decorators, last line) of each top-level statement
    scan_cache: ScanCache = field(default_factory=dict)  # per-statement walks of this path


def _spans(tree: ast.Module) -> list[tuple[int, int]]:
    out = []
    for stmt in tree.body:
        first = min([stmt.lineno, *(d.lineno for d in getattr(stmt, "decorator_list", []))])
        out.append((first, stmt.end_lineno or stmt.lineno))
    return out


def _trivia(line: str) -> bool:
    """A line the `ast` does not see when it lies between statements: blank or a comment."""
    stripped = line.lstrip()
    return not stripped or stripped.startswith("#")


def _between(spans: list[tuple[int, int]], line: int) -> bool:
    """Whether 1-based `line` lies outside every top-level statement (spans are in order)."""
    k = bisect.bisect_right(spans, (line, sys.maxsize)) - 1
    return k < 0 or spans[k][1] < line


class IncrementalParser:
    """Keeps the last module per path (LRU) and re-parses only what changed."""

    def __init__(self, max_files: int = 8) -> None:
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self.max_files = max_files
        self.reused = 0  # how many parses were incremental (tests and the benchmark read it)

    def parse(self, path: str, text: str) -> ast.Module:
        """`ast.parse(text)` for `path`, reusing the previous parse where the text did not change."""
        lines = text.split("\n")
        entry = self._cache.get(path)
        tree = self._splice(entry, lines) if entry is not None else None
        if tree is None:
            # let go of the previous tree first: two trees of a big file alive at once double the peak
            # memory, which the allocator then keeps (a broken text costs the next edit a full parse)
            self._cache.pop(path, None)
            scan_cache = entry.scan_cache if entry is not None else {}
            entry = None
            tree = ast.parse(text)  # raises SyntaxError for broken text, like a full parse
            self._cache[path] = _Entry(lines, tree, _spans(tree), scan_cache)
        else:
            self.reused += 1
            self._cache[path] = _Entry(lines, tree, _spans(tree), entry.scan_cache if entry is not None else {})
        self._cache.move_to_end(path)
        while len(self._cache) > self.max_files:
            self._cache.popitem(last=False)
        return tree

    def scan_cache(self, path: str) -> ScanCache:
        """The per-statement scan cache that goes with the cached parse of `path`."""
        entry = self._cache.get(path)
        return entry.scan_cache if entry is not None else {}

    def forget(self, path: str) -> None:
        self._cache.pop(path, None)

    @staticmethod
    def _splice(entry: _Entry, lines: list[str]) -> ast.Module | None:
        old = entry.lines
        if len(old) != len(lines):
            return None
        changed = [i for i, (a, b) in enumerate(zip(old, lines, strict=True)) if a != b]
        # comments and blank lines between statements are not in the tree (a header comment rewritten by a
        # formatter, a licence year): only the other changed lines need a parse
        changed = [i for i in changed if not (_trivia(old[i]) and _trivia(lines[i]) and _between(entry.spans, i + 1))]
        if not changed:
            return entry.tree
        first, last = changed[0] + 1, changed[-1] + 1  # 1-based line numbers
        touched = [k for k, (a, b) in enumerate(entry.spans) if a <= last and b >= first]
        if not touched:
            return None  # a new statement between statements: parse it all
        lo, hi = touched[0], touched[-1]
        start, end = entry.spans[lo][0], entry.spans[hi][1]
        if first < start or last > end:
            return None  # the edit reaches outside the touched statements
        region = "\n".join(lines[start - 1:end]) + "\n"
        try:
            sub = ast.parse(region)
        except (SyntaxError, ValueError):
            return None
        if not sub.body:
            return None
        ast.increment_lineno(sub, start - 1)
        body = [*entry.tree.body[:lo], *sub.body, *entry.tree.body[hi + 1:]]
        return ast.Module(body=body, type_ignores=[])
