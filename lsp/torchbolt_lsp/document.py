"""Per-document model: the text the editor holds, a tree-sitter tree kept incrementally, and the last
syntactically valid `ast.Module`.

The server core applies every `didChange` to its own copy of the text (pygls keeps another one), so the
tree-sitter tree can be edited in place (`tree.edit` + reparse with the old tree) from the change ranges.
LSP positions count UTF-16 code units by default (or UTF-8 / UTF-32 when negotiated) and split lines at
`\\n`, `\\r\\n` and `\\r`; tree-sitter counts bytes and splits rows at `\\n`. All conversions live here.
"""

from __future__ import annotations

import ast
import re
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar, cast

import tree_sitter as ts
import tree_sitter_python as tsp
from lsprotocol import types

from .analysis.gc_pause import paused_gc

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
T = TypeVar("T")
#: Files larger than this are kept as text only: no tree-sitter tree, no ast (answers stay empty, fast).
MAX_PARSE_CHARS = 4_000_000
#: How many offending lines the ast repair replaces with `pass` before giving up.
MAX_REPAIRS = 4

_LANGUAGE = ts.Language(tsp.language())
_parser_local = threading.local()


def parser() -> ts.Parser:
    """A tree-sitter Python parser for the calling thread (parsers are not thread-safe)."""
    p = getattr(_parser_local, "parser", None)
    if p is None:
        p = ts.Parser(_LANGUAGE)
        _parser_local.parser = p
    return p


def encode(text: str) -> bytes:
    """UTF-8 bytes of editor text; lone surrogates (possible in JSON strings) survive instead of raising."""
    return text.encode("utf-8", "surrogatepass")


def parse_tree(text: str | bytes, old: ts.Tree | None = None) -> ts.Tree:
    """Parse Python source with tree-sitter (never fails; errors become ERROR/MISSING nodes)."""
    data = encode(text) if isinstance(text, str) else text
    return parser().parse(data, old) if old is not None else parser().parse(data)


def _units(ch: str, encoding: str) -> int:
    """Length of one character in the negotiated position encoding."""
    if encoding == "utf-8":
        return len(encode(ch))
    if encoding == "utf-32":
        return 1
    return 2 if ord(ch) > 0xFFFF else 1


def parse_ast(text: str) -> ast.Module | None:
    """`ast.parse`, repairing up to MAX_REPAIRS offending lines by `pass` (lsp-notes §6); None if hopeless."""
    with paused_gc():  # a big tree is built: cyclic GC passes over the live trees would triple the cost
        return _parse_repairing(text)


def _parse_repairing(text: str) -> ast.Module | None:
    lines: list[str] | None = None
    for _ in range(MAX_REPAIRS + 1):
        try:
            return ast.parse(text if lines is None else "".join(lines), type_comments=False)
        except SyntaxError as exc:
            if lines is None:
                lines = text.splitlines(keepends=True)
            lineno = exc.lineno or 0
            if not 1 <= lineno <= len(lines):
                return None
            old = lines[lineno - 1]
            indent = old[: len(old) - len(old.lstrip(" \t"))]
            repaired = f"{indent}pass\n"
            if old == repaired:
                return None
            lines[lineno - 1] = repaired
        except (ValueError, RecursionError, MemoryError):  # null bytes, absurd nesting
            return None
    return None


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of a document at one version, safe to hand to a worker thread."""

    uri: str
    version: int
    text: str


class Document:
    """One open document: text, version, tree-sitter tree (incremental) and the last good ast."""

    def __init__(self, uri: str, text: str, version: int = 0, encoding: str = "utf-16") -> None:
        self.uri = uri
        self.version = version
        self.encoding = encoding
        self.text = text
        self._line_starts: list[int] | None = None
        self._bytes: bytes | None = None
        # the tree is brought up to date lazily, on first use after a change: a burst of edits (500
        # full-document changes while a formatter or a paste runs) costs one parse of the newest text
        self._tree: ts.Tree | None = None
        self._tree_stale = True  # the text changed since the tree was parsed
        self._tree_edited = False  # `_tree` carries tree.edit()s for those changes (an incremental reparse)
        self._tree_lock = threading.RLock()
        self.tree_parses = 0  # how many times a tree was parsed (tests: only the newest text is parsed)
        self._ast: ast.Module | None = None
        self._ast_version: int | None = None  # version the ast was last attempted for
        self.ast_is_current = False  # True when the last attempt parsed (possibly after repair)
        self._lock = threading.Lock()
        self._memo: dict[str, tuple[int, object]] = {}
        self._text_id = 0

    @property
    def tree(self) -> ts.Tree | None:
        """The tree-sitter tree of the current text (parsed now if the text changed since; None for huge files)."""
        with self._tree_lock:
            if self._tree_stale:
                if len(self.text) > MAX_PARSE_CHARS:
                    self._tree = None
                else:
                    old = self._tree if self._tree_edited else None
                    self._tree = parse_tree(self.data, old)
                    self.tree_parses += 1
                self._tree_stale = False
                self._tree_edited = False
            return self._tree

    # ----------------------------------------------------------------------------------------- text
    @property
    def data(self) -> bytes:
        """The text as UTF-8 bytes (what the tree's byte offsets refer to)."""
        if self._bytes is None:
            self._bytes = encode(self.text)
        return self._bytes

    @property
    def line_starts(self) -> list[int]:
        """Character index where each LSP line starts."""
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _LINE_BREAK.finditer(self.text))]
        return self._line_starts

    @property
    def lines(self) -> list[str]:
        """The LSP lines of the text, without line breaks (cached per version)."""
        return self.memo("lines", lambda: _LINE_BREAK.split(self.text))

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """A value derived from the current text, computed once per version (for per-request helpers)."""
        entry = self._memo.get(key)
        if entry is not None and entry[0] == self._text_id:
            return cast(T, entry[1])
        value = compute()
        self._memo[key] = (self._text_id, value)
        return value

    def line_count(self) -> int:
        return len(self.line_starts)

    def line_text(self, line: int) -> str:
        """The text of one line without its line break ("" when out of range)."""
        starts = self.line_starts
        if not 0 <= line < len(starts):
            return ""
        end = starts[line + 1] if line + 1 < len(starts) else len(self.text)
        return self.text[starts[line] : end].rstrip("\r\n")

    def snapshot(self) -> Snapshot:
        return Snapshot(self.uri, self.version, self.text)

    # ------------------------------------------------------------------------------------ positions
    def offset_at(self, line: int, character: int) -> int:
        """Character index of an LSP position, clamped into the document (never raises)."""
        starts = self.line_starts
        if line < 0:
            return 0
        if line >= len(starts):
            return len(self.text)
        text = self.line_text(line)
        start = starts[line]
        if self.encoding == "utf-32" or text.isascii():
            return start + max(0, min(character, len(text)))
        units = 0
        for i, ch in enumerate(text):
            if units >= character:
                return start + i
            units += _units(ch, self.encoding)
        return start + len(text)

    def position_at(self, offset: int) -> types.Position:
        """LSP position of a character index (clamped)."""
        offset = max(0, min(offset, len(self.text)))
        starts = self.line_starts
        line = bisect_right(starts, offset) - 1
        prefix = self.text[starts[line] : offset]
        if self.encoding == "utf-32" or prefix.isascii():
            return types.Position(line=line, character=len(prefix))
        return types.Position(line=line, character=sum(_units(ch, self.encoding) for ch in prefix))

    def byte_at(self, offset: int) -> int:
        """UTF-8 byte offset of a character index."""
        return len(encode(self.text[:offset]))

    def offset_of_byte(self, byte: int) -> int:
        """Character index of a UTF-8 byte offset (moved back to a character boundary if inside one)."""
        data = self.data
        byte = max(0, min(byte, len(data)))
        while 0 < byte < len(data) and (data[byte] & 0xC0) == 0x80:
            byte -= 1
        return len(data[:byte].decode("utf-8", "surrogatepass"))

    def range_of(self, start: int, end: int) -> types.Range:
        """LSP range of a character-index span."""
        return types.Range(start=self.position_at(start), end=self.position_at(end))

    def range_of_bytes(self, start_byte: int, end_byte: int) -> types.Range:
        """LSP range of a UTF-8 byte span (tree-sitter node offsets)."""
        return self.range_of(self.offset_of_byte(start_byte), self.offset_of_byte(end_byte))

    def range_of_ast(self, lineno: int, col: int, end_lineno: int, end_col: int) -> types.Range:
        """LSP range of an ast node location (1-based lines, UTF-8 byte columns on `\\n`-split lines)."""
        return types.Range(start=self._ast_pos(lineno, col), end=self._ast_pos(end_lineno, end_col))

    def _ast_pos(self, lineno: int, col: int) -> types.Position:
        # ast counts lines like Python's tokenizer (\n, \r\n, \r), matching LSP lines.
        line = max(0, lineno - 1)
        text = self.line_text(line)
        prefix = encode(text)[: max(0, col)].decode("utf-8", "ignore")
        if self.encoding == "utf-32":
            return types.Position(line=line, character=len(prefix))
        return types.Position(line=line, character=sum(_units(ch, self.encoding) for ch in prefix))

    # ------------------------------------------------------------------------------------- changes
    def apply_changes(self, changes: Iterable[types.TextDocumentContentChangeEvent], version: int) -> None:
        """Apply didChange events in order. The tree is not reparsed here: range edits are recorded on it
        (`tree.edit`, cheap) and the next use of `tree` reparses once, incrementally when it can."""
        with self._tree_lock:
            for change in changes:
                rng = getattr(change, "range", None)
                if rng is None:
                    self._set_text(change.text)
                    self._forget_tree()
                    continue
                start = self.offset_at(rng.start.line, rng.start.character)
                end = self.offset_at(rng.end.line, rng.end.character)
                if end < start:
                    start, end = end, start
                new_text = change.text
                tree = self._tree if (self._tree_edited or not self._tree_stale) else None
                if tree is not None:
                    old_bytes = self.data
                    start_byte = self.byte_at(start)
                    old_end_byte = start_byte + len(encode(self.text[start:end]))
                self._set_text(self.text[:start] + new_text + self.text[end:])
                if tree is not None:
                    new_end_byte = start_byte + len(encode(new_text))
                    tree.edit(
                        start_byte=start_byte,
                        old_end_byte=old_end_byte,
                        new_end_byte=new_end_byte,
                        start_point=_point(old_bytes, start_byte),
                        old_end_point=_point(old_bytes, old_end_byte),
                        new_end_point=_point(self.data, new_end_byte),
                    )
                    self._tree_edited = True
                else:
                    self._forget_tree()
            self.version = version

    def replace_text(self, text: str, version: int) -> None:
        """Replace the whole text (didOpen of a known uri, or a resync)."""
        with self._tree_lock:
            self._set_text(text)
            self._forget_tree()
            self.version = version

    def _set_text(self, text: str) -> None:
        self.text = text
        self._line_starts = None
        self._bytes = None
        self._text_id += 1
        self._tree_stale = True

    def _forget_tree(self) -> None:
        """The next `tree` is a full parse (the whole text was replaced)."""
        self._tree = None
        self._tree_edited = False

    # ------------------------------------------------------------------------------------------ ast
    def ast_module(self) -> ast.Module | None:
        """The ast of the current text (with the line repair), else the last good one; None if never parsed.

        Costs an `ast.parse` the first time per version; call it from a worker thread for big files.
        """
        with self._lock:
            if self._ast_version == self.version:
                return self._ast
            version, text = self.version, self.text
        module = parse_ast(text) if len(text) <= MAX_PARSE_CHARS else None
        with self._lock:
            if self.version == version:
                self._ast_version = version
                self.ast_is_current = module is not None
                if module is not None:
                    self._ast = module
            return self._ast


def _point(data: bytes, byte: int) -> tuple[int, int]:
    """tree-sitter point (row, byte column) of a byte offset; rows split at b'\\n' only."""
    row = data.count(b"\n", 0, byte)
    col = byte - (data.rfind(b"\n", 0, byte) + 1)
    return (row, col)


class DocumentStore:
    """Open documents by URI. Unknown URIs give None: every feature must answer empty, not fail."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def open(self, uri: str, text: str, version: int, encoding: str) -> Document:
        doc = Document(uri, text, version, encoding)
        self._docs[uri] = doc
        return doc

    def get(self, uri: str) -> Document | None:
        return self._docs.get(uri)

    def close(self, uri: str) -> Document | None:
        return self._docs.pop(uri, None)

    def __iter__(self) -> Iterator[Document]:
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        return len(self._docs)
