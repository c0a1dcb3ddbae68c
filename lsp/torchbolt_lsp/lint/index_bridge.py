"""Cross-file facts for the lint engine, read from the language server's workspace index.

The server keeps one `WorkspaceIndex` (analysis/facts.py, built by the core); the lint rules ask
their questions through `Project`. This module translates the index's per-file facts into the lint
`FileFacts` (cached per facts object, which is immutable) so both share one analysis of the
workspace instead of parsing every file twice.
"""

from __future__ import annotations

import ast
import threading
from typing import TYPE_CHECKING, Any

from .facts import ClassFacts, FileFacts, Project, fstring_pattern

if TYPE_CHECKING:
    from ..analysis.facts import FileFacts as IndexFileFacts
    from ..workspace_index import WorkspaceIndex

_lock = threading.Lock()
_cache: dict[str, tuple[Any, FileFacts]] = {}  # path -> (the index facts object, its translation)


def translate(facts: IndexFileFacts) -> FileFacts:
    """The lint view of one file's index facts."""
    classes = tuple(
        ClassFacts(c.name, facts.path, c.span.line + 1, tuple(b.qualified or b.source for b in c.bases),
                   frozenset(m.name for m in c.methods), c.automatic_optimization is False)
        for c in facts.classes)
    logged: set[str] = set()
    patterns: list[str] = []
    dynamic = False
    for metric in facts.logged:
        if metric.name is not None:
            logged.add(metric.name)
            continue
        pattern = _pattern_of(metric.source)
        if pattern is None:
            dynamic = True
        else:
            patterns.append(pattern)
    fitted: Any = facts.extra.get("fitted", frozenset())
    return FileFacts(facts.path, classes, frozenset(logged), tuple(patterns), dynamic, frozenset(fitted))


def _pattern_of(source: str) -> str | None:
    try:
        node = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    return fstring_pattern(node) if isinstance(node, ast.JoinedStr) else None


def project_from_index(index: WorkspaceIndex) -> Project:
    """A private `Project` snapshot of the index (the caller may update it with a fresher file)."""
    project = Project()
    files = index.files()
    with _lock:
        for path, facts in files.items():
            hit = _cache.get(path)
            if hit is None or hit[0] is not facts:
                hit = (facts, translate(facts))
                _cache[path] = hit
            project.files[path] = hit[1]
        for gone in set(_cache) - set(files):
            del _cache[gone]
    return project
