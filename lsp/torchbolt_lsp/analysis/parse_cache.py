"""One `ast` parse per open-document version, kept incremental, for re-indexing after each edit.

The core re-indexes an open document shortly after every change. A full `ast.parse` plus a walk of a
3,000-line file holds the GIL for a few hundred milliseconds on a loaded machine, competing with the
requests and the diagnostics the user is waiting for. Here the document's previous parse is kept
(`lint.incremental.IncrementalParser`: only the top-level statements an edit touched are parsed
again) together with a per-statement memory of extracted facts (`analysis.facts.FactsCache`), so an
edit inside one method costs a parse and a walk of that class instead of the whole file.
"""

from __future__ import annotations

import ast
import threading
from collections import OrderedDict

from ..lint.incremental import IncrementalParser
from .facts import FactsCache


class DocumentParses:
    """Last parses and fact caches of open documents, by path (LRU-bounded; thread-safe via `lock`)."""

    def __init__(self, max_files: int = 16) -> None:
        self.parser = IncrementalParser(max_files=max_files)
        self.lock = threading.Lock()  # callers hold it around parse + extraction of one path
        self._facts: OrderedDict[str, FactsCache] = OrderedDict()
        self.max_files = max_files

    def parse(self, path: str, text: str) -> ast.Module | None:
        """`ast.parse(text)`, reusing the unchanged statements of the last parse; None when it does not
        parse (the caller falls back to the repairing `document.parse_ast`). Call with `lock` held."""
        try:
            return self.parser.parse(path, text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None

    def facts_cache(self, path: str) -> FactsCache:
        """The fact memory of `path` (created on first use). Call with `lock` held."""
        cache = self._facts.get(path)
        if cache is None:
            cache = self._facts[path] = FactsCache()
        self._facts.move_to_end(path)
        while len(self._facts) > self.max_files:
            self._facts.popitem(last=False)
        return cache

    def forget(self, path: str) -> None:
        """Drop what is kept for `path` (its document closed)."""
        with self.lock:
            self.parser.forget(path)
            self._facts.pop(path, None)


__all__ = ["DocumentParses"]
