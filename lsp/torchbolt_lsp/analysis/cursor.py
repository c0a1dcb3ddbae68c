"""What is at the cursor, on complete or half-typed code.

tree-sitter (which never fails) locates the statement that contains the cursor; a small lexical scan
from that statement's start to the cursor then finds the open brackets, strings and comments, which
stays right on an unclosed `Trainer(`, a half-written `def` or a missing colon. The enclosing class and
function come from indentation, which survives any syntax error.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import tree_sitter as ts

#: Statement kinds whose body the statement search descends into.
_COMPOUND = frozenset(
    {
        "module",
        "block",
        "class_definition",
        "function_definition",
        "decorated_definition",
        "if_statement",
        "elif_clause",
        "else_clause",
        "for_statement",
        "while_statement",
        "try_statement",
        "except_clause",
        "finally_clause",
        "with_statement",
        "match_statement",
        "case_clause",
    }
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_IDENT_TAIL = re.compile(r"[A-Za-z_0-9]*$")
_KEYWORD_ARG = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)\s*(.*)$", re.S)
_DEF_LINE = re.compile(r"^([ \t]*)(async[ \t]+)?def[ \t]+([A-Za-z_0-9]*)$")
_BARE_LINE = re.compile(r"^([ \t]*)([A-Za-z_][A-Za-z_0-9]*)?$")
_MEMBER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)\s*\.\s*([A-Za-z_0-9]*)$")
_CLASS_HEAD = re.compile(r"^([ \t]*)class[ \t]+([A-Za-z_][A-Za-z_0-9]*)")
_DEF_HEAD = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_][A-Za-z_0-9]*)")
_DICT_KEY = re.compile(r"""^\s*(['"])([^'"]*)\1\s*:\s*(.*)$""", re.S)
#: How far back the lexical scan may start; beyond it, a column-0 line closer to the cursor is used.
MAX_SCAN_CHARS = 60_000
#: How far past the cursor the scan looks for the rest of the call's arguments.
MAX_FORWARD_CHARS = 4_000


@dataclass
class Bracket:
    """An open bracket at the cursor, with where its top-level elements start."""

    char: str
    offset: int
    commas: list[int] = field(default_factory=list)


@dataclass
class StringAt:
    """The cursor is inside a string literal."""

    quote: str  # ' " ''' or \"\"\"
    start: int  # offset of the first quote character
    content_start: int
    prefix: str  # the string's content before the cursor


@dataclass
class ScanState:
    brackets: list[Bracket]
    string: StringAt | None
    in_comment: bool


def scan(text: str, start: int, end: int) -> ScanState:
    """Lexically scan text[start:end]: open brackets, the string or comment the end is inside."""
    brackets: list[Bracket] = []
    i = start
    n = min(end, len(text))
    while i < n:
        ch = text[i]
        if ch == "#":
            nl = _line_end(text, i)
            if nl >= n:
                return ScanState(brackets, None, True)
            i = nl
            continue
        if ch in "'\"":
            # string prefix letters (r, b, f, u) just before the quote decide escaping
            j = i - 1
            raw = False
            while j >= start and text[j].isalpha() and i - j <= 3:
                raw = raw or text[j] in "rR"
                j -= 1
            quote = text[i : i + 3] if text[i : i + 3] in ("'''", '"""') else ch
            content = i + len(quote)
            k = content
            closed = False
            while k < n:
                c = text[k]
                if c == "\\" and not raw:
                    k += 2
                    continue
                if text.startswith(quote, k):
                    closed = True
                    break
                if len(quote) == 1 and c in "\r\n":
                    break  # an unterminated single-quoted string ends at the line end
                k += 1
            if closed:
                i = k + len(quote)
                continue
            if k >= n:
                return ScanState(brackets, StringAt(quote, i, content, text[content:n]), False)
            i = k  # unterminated on this line: carry on after it
            continue
        if ch in "([{":
            brackets.append(Bracket(ch, i))
        elif ch in ")]}":
            if brackets:
                brackets.pop()
        elif ch == "," and brackets:
            brackets[-1].commas.append(i)
        i += 1
    return ScanState(brackets, None, False)


def _line_end(text: str, i: int) -> int:
    m = _LINE_BREAK.search(text, i)
    return m.start() if m else len(text)


def statement_start(tree: ts.Tree | None, text: str, offset: int, byte: int) -> int:
    """Character offset where the innermost statement holding the cursor begins (a safe scan start)."""
    start_byte = 0
    if tree is not None:
        node = tree.root_node
        while True:
            prev = None
            for child in node.children:
                if child.start_byte < byte or (child.start_byte == byte and child.type != "block"):
                    prev = child
                else:
                    break
            if prev is None:
                break
            start_byte = prev.start_byte
            if prev.type in _COMPOUND and prev.end_byte >= byte:
                node = prev
                continue
            break
    start = len(text.encode("utf-8", "surrogatepass")[:start_byte].decode("utf-8", "ignore"))
    if offset - start > MAX_SCAN_CHARS:
        # pathological: find a column-0 code line not too far back
        floor = offset - MAX_SCAN_CHARS
        for m in re.finditer(r"(?m)^[A-Za-z_@]", text[floor:offset]):
            start = floor + m.start()
            break
        else:
            start = floor
    return min(start, offset)


@dataclass
class ClassHeader:
    """The class whose body holds the cursor."""

    name: str
    bases: tuple[str, ...]  # base expressions as written (dotted names; keywords dropped)
    line: int
    indent: int


@dataclass
class CallAt:
    """The cursor is inside the argument list of a call."""

    callee: str  # the callee as written, e.g. "pl.Trainer", "self.log"
    open_offset: int
    given: tuple[str, ...]  # keyword names in the call (before and after the cursor)
    active_index: int  # index of the argument under the cursor
    positional_before: int  # positional arguments before the cursor's argument
    keyword: str | None  # `name=` of the argument under the cursor
    in_value: bool  # after `name=`
    value_text: str  # what is typed after `name=` (or the whole argument)
    arg_start: int  # offset where the argument under the cursor starts


@dataclass
class CursorContext:
    """Everything features need to know about the cursor position."""

    offset: int
    line: int
    line_prefix: str
    word: str  # identifier characters just before the cursor
    word_start: int
    in_comment: bool
    string: StringAt | None
    call: CallAt | None  # the innermost call whose `(` is open at the cursor
    dict_key: str | None  # in `{"key": <cursor>` (the innermost bracket is a dict)
    dict_value_text: str
    member: tuple[str, str] | None  # (receiver, partial) for `receiver.partial`
    klass: ClassHeader | None
    function: str | None  # innermost enclosing def
    function_indent: int | None
    def_name: str | None  # partial hook name after `def ` directly in a class body
    member_line: bool  # at the start of a member line in a class body (bare identifier or nothing)
    indent: int


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _enclosing(
    lines: list[str], line_no: int, col_indent: int
) -> tuple[ClassHeader | None, str | None, int | None]:
    """Enclosing class and function by indentation, scanning upward from the cursor's line."""
    limit = col_indent
    function: str | None = None
    function_indent: int | None = None
    for i in range(line_no - 1, max(-1, line_no - 5000), -1):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        ind = _indent_of(raw)
        if ind >= limit:
            continue
        m = _CLASS_HEAD.match(raw)
        if m:
            return ClassHeader(m.group(2), _class_bases(lines, i), i, ind), function, function_indent
        m = _DEF_HEAD.match(raw)
        if m and function is None:
            function, function_indent = m.group(2), ind
        if stripped.startswith((")", "]", "}")) or stripped[0] in "'\"":
            continue  # closing bracket or string continuation lines do not open a block
        limit = ind
        if ind == 0:
            break
    return None, function, function_indent


def _class_bases(lines: list[str], line_no: int) -> tuple[str, ...]:
    header = "\n".join(lines[line_no : line_no + 10])
    open_at = header.find("(")
    colon = header.find(":")
    if open_at < 0 or (0 <= colon < open_at):
        return ()
    state = scan(header, open_at + 1, len(header))
    depth_text = []
    depth = 0
    for ch in header[open_at + 1 :]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        depth_text.append(ch)
    del state
    bases = []
    for part in _split_top("".join(depth_text)):
        part = part.strip()
        if part and "=" not in part and re.fullmatch(r"[A-Za-z_][\w.\s]*", part):
            bases.append(re.sub(r"\s+", "", part))
    return tuple(bases)


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _callee_before(text: str, open_offset: int) -> str | None:
    """The dotted name right before an open parenthesis (`pl.Trainer` in `pl.Trainer(`)."""
    j = open_offset
    while j > 0 and text[j - 1] in " \t":
        j -= 1
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*)$", text[max(0, j - 200) : j])
    if not m:
        return None
    return re.sub(r"\s+", "", m.group(1))


def _keywords_in(segment: str) -> list[str]:
    out = []
    for part in _split_top(segment):
        m = _KEYWORD_ARG.match(part)
        if m:
            out.append(m.group(1))
    return out


def _rest_of_call(text: str, offset: int) -> str:
    """Arguments after the cursor up to the call's closing parenthesis (bounded, for `given` keywords)."""
    end = min(len(text), offset + MAX_FORWARD_CHARS)
    depth = 0
    i = offset
    blank = 0
    while i < end:
        ch = text[i]
        if ch in "'\"":
            q = ch
            i += 1
            while i < end and text[i] != q and text[i] not in "\r\n":
                i += 2 if text[i] == "\\" else 1
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return text[offset:i]
            depth -= 1
        elif ch == "\n":
            blank = blank + 1 if text[i + 1 : i + 2] in ("\n", "\r", "") else 0
            nxt = text[i + 1 : i + 80].lstrip(" \t")
            if blank or re.match(r"(def|class|@|if|for|while|return|with|try)\b", nxt):
                return text[offset:i]  # an unclosed call: stop at the next statement
        i += 1
    return text[offset:i]


def cursor_context(
    text: str, tree: ts.Tree | None, offset: int, lines: list[str] | None = None, line_no: int | None = None
) -> CursorContext:
    """Analyse the cursor at character `offset` of `text` (clamped).

    `lines` (the LSP lines) and `line_no` (the cursor's line) may be passed when the caller has them
    cached; otherwise they are computed from the text.
    """
    offset = max(0, min(offset, len(text)))
    line_start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    line_prefix = text[line_start:offset]
    if line_no is None:
        line_no = len(_LINE_BREAK.findall(text, 0, line_start))
    m = _IDENT_TAIL.search(line_prefix)
    word = m.group(0) if m else ""
    if word and word[0].isdigit():
        word = ""
    byte = len(text[:offset].encode("utf-8", "surrogatepass"))
    start = statement_start(tree, text, offset, byte)
    state = scan(text, start, offset)

    call: CallAt | None = None
    dict_key: str | None = None
    dict_value_text = ""
    if state.brackets:
        top = state.brackets[-1]
        seg_start = (top.commas[-1] + 1) if top.commas else top.offset + 1
        current = text[seg_start:offset]
        if top.char == "(":
            callee = _callee_before(text, top.offset)
            if callee:
                before = text[top.offset + 1 : seg_start]
                given_before = _keywords_in(before)
                positional = (
                    sum(
                        1
                        for p in _split_top(before)
                        if p.strip() and not _KEYWORD_ARG.match(p) and not p.strip().startswith("*")
                    )
                    if top.commas
                    else 0
                )
                rest = _rest_of_call(text, offset)
                after_first = rest.split(",", 1)[1] if "," in rest else ""
                given = tuple(dict.fromkeys(given_before + _keywords_in(after_first)))
                km = _KEYWORD_ARG.match(current)
                call = CallAt(
                    callee=callee,
                    open_offset=top.offset,
                    given=given,
                    active_index=len(top.commas),
                    positional_before=positional,
                    keyword=km.group(1) if km else None,
                    in_value=bool(km),
                    value_text=(km.group(2) if km else current.strip()),
                    arg_start=seg_start,
                )
        elif top.char == "{":
            dm = _DICT_KEY.match(current)
            if dm:
                dict_key, dict_value_text = dm.group(2), dm.group(3)

    if lines is None:
        lines = _LINE_BREAK.split(text)
    indent_here = (
        _indent_of(line_prefix)
        if not line_prefix.strip() or _DEF_LINE.match(line_prefix) or _BARE_LINE.match(line_prefix)
        else _indent_of(line_prefix)
    )
    klass, function, function_indent = _enclosing(
        lines, line_no, indent_here if line_prefix.strip() or not line_prefix else len(line_prefix)
    )
    def_name = None
    member_line = False
    if klass is not None and function is None and not state.brackets and state.string is None:
        dm2 = _DEF_LINE.match(line_prefix)
        if dm2:
            def_name = dm2.group(3)
        elif _BARE_LINE.match(line_prefix) and _indent_of(line_prefix) > klass.indent:
            member_line = True
    member = None
    if state.string is None and not state.in_comment:
        mm = _MEMBER.search(line_prefix)
        if mm:
            member = (re.sub(r"\s+", "", mm.group(1)), mm.group(2))
    return CursorContext(
        offset=offset,
        line=line_no,
        line_prefix=line_prefix,
        word=word,
        word_start=offset - len(word),
        in_comment=state.in_comment,
        string=state.string,
        call=call,
        dict_key=dict_key,
        dict_value_text=dict_value_text,
        member=member,
        klass=klass,
        function=function,
        function_indent=function_indent,
        def_name=def_name,
        member_line=member_line,
        indent=_indent_of(line_prefix),
    )


def top_level_bindings(tree: ts.Tree | None, data: bytes, package: str = "") -> dict[str, str]:
    """Import bindings read from tree-sitter import statements (works while the rest is broken)."""
    from .names import bindings_from_ast

    if tree is None:
        return {}
    out: dict[str, str] = {}
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        for child in node.children:
            if child.type in ("import_statement", "import_from_statement"):
                src = data[child.start_byte : child.end_byte].decode("utf-8", "replace")
                try:
                    out.update(bindings_from_ast(ast.parse(src.strip()), package))
                except (SyntaxError, ValueError):
                    continue
            elif child.type in (
                "ERROR",
                "if_statement",
                "try_statement",
                "block",
                "else_clause",
                "except_clause",
                "with_statement",
            ):
                stack.append(child)
    return out
