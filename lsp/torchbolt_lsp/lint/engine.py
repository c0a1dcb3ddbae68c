"""The one lint engine behind the language server and `torchbolt check`.

`lint_source(source, path, project, config)` parses the text once with `ast`, walks it once
(`facts.scan`), runs every selected checker over that scan, and drops findings silenced by `# noqa`.
Checkers live in `lint/rules/*.py`, each declared next to the rule codes it reports.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import logging
import os
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..analysis.facts import FactsCache, FileFacts, extract_facts, text_digest
from ..workspace_index import Resolved
from . import facts as F
from .config import LintConfig
from .model import RULES, Finding, Fix, Rule, Severity, declare

log = logging.getLogger(__name__)

SYNTAX = declare("TB001", "syntax-error", "The file does not parse; Lightning rules cannot run on it.",
                 Severity.ERROR)

CheckerFn = Callable[["Context"], None]
#: (rules a checker may report, the checker), in declaration order.
CHECKERS: list[tuple[tuple[Rule, ...], CheckerFn]] = []


def checks(*rules: Rule) -> Callable[[CheckerFn], CheckerFn]:
    """Register a checker that reports the given rules (it is skipped when none of them is selected)."""

    def register(fn: CheckerFn) -> CheckerFn:
        CHECKERS.append((rules, fn))
        return fn

    return register


@dataclass
class Context:
    """Everything a checker reads about the file being linted, and where it reports."""

    path: str
    source: str
    lines: list[str]
    tree: ast.Module
    imports: dict[str, str]
    star_lightning: bool
    scan: F.Scan
    project: F.Project
    facts: FileFacts
    findings: list[Finding] = field(default_factory=list)
    _resolved: dict[int, Resolved] = field(default_factory=dict)
    _names: dict[int, str | None] = field(default_factory=dict)
    _by_class: dict[int, list[F.CallSite]] | None = None
    _enabled: Callable[..., bool] = lambda code, context="": True
    _expected: list[tuple[int, int]] | None = None  # line ranges inside pytest.raises / assertRaises
    memo: dict[object, object] = field(default_factory=dict)  # checkers' per-file answers (keys namespaced)

    # ---- names ----
    def qualify(self, expr: ast.expr) -> str | None:
        return F.qualify(expr, self.imports)

    def lightning_name(self, expr: ast.expr) -> str | None:
        """The last name component when `expr` refers to a Lightning/torchbolt object, else None."""
        key = id(expr)
        if key not in self._names:
            self._names[key] = self._lightning_name(expr)
        return self._names[key]

    def _lightning_name(self, expr: ast.expr) -> str | None:
        q = self.qualify(expr)
        if F.is_lightning(q):
            return q.split(".")[-1] if q else None
        if self.star_lightning and isinstance(expr, ast.Name) and expr.id not in self.imports:
            return expr.id
        return None

    # ---- classes ----
    def resolved(self, cls: F.ClassNode) -> Resolved:
        """The class resolved by the workspace index (the one resolver of the server, rules and CLI)."""
        key = id(cls.node)
        if key not in self._resolved:
            self._resolved[key] = self.project.resolved(self.path, cls.node.name)
        return self._resolved[key]

    def classes_of(self, *kinds: str) -> Iterator[tuple[F.ClassNode, Resolved]]:
        for cls in self.scan.classes:
            res = self.resolved(cls)
            if res.kind in kinds:
                yield cls, res

    def calls_in(self, cls: F.ClassNode) -> list[F.CallSite]:
        """The calls inside one class (grouped once per file)."""
        if self._by_class is None:
            groups: dict[int, list[F.CallSite]] = {}
            for site in self.scan.calls:
                if site.cls is not None:
                    groups.setdefault(id(site.cls), []).append(site)
            self._by_class = groups
        return self._by_class.get(id(cls), [])

    def class_kind(self, cls: F.ClassNode | None) -> str | None:
        return self.resolved(cls).kind if cls is not None else None

    # ---- positions ----
    def source_segment(self, node: ast.AST) -> str | None:
        """The source text of a node (like `ast.get_source_segment`, without rescanning the file each call)."""
        try:
            line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
            end_line, end_col = node.end_lineno, node.end_col_offset  # type: ignore[attr-defined]
        except AttributeError:
            return None
        if end_line is None or end_col is None or not 1 <= line <= end_line <= len(self.lines):
            return None
        if line == end_line:
            return self._bytes(line)[col:end_col].decode("utf-8", errors="replace")
        first = self._bytes(line)[col:].decode("utf-8", errors="replace")
        middle = self.lines[line:end_line - 1]
        last = self._bytes(end_line)[:end_col].decode("utf-8", errors="replace")
        return "\n".join([first, *middle, last])

    def _bytes(self, line: int) -> bytes:
        return self.lines[line - 1].encode("utf-8")

    def char_col(self, line: int, byte_col: int) -> int:
        """ast columns are UTF-8 byte offsets; findings use str indices."""
        if not 1 <= line <= len(self.lines):
            return byte_col
        text = self.lines[line - 1]
        if text.isascii():
            return byte_col
        return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int, int, int]:
        line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
        end_line = getattr(node, "end_lineno", None) or line
        end_col = getattr(node, "end_col_offset", None)
        if end_col is None:
            end_col = col
        return line, self.char_col(line, col), end_line, self.char_col(end_line, end_col)

    def name_span(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> tuple[int, int, int, int]:
        """The range of a def/class name (not its whole body)."""
        line = node.lineno
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        # one shared pattern (a pattern per name would be recompiled for every def of a big file)
        match = next((m for m in DEF_NAME.finditer(text) if m.group(1) == node.name), None)
        start = match.start(1) if match else self.char_col(line, node.col_offset)
        return line, start, line, start + len(node.name)

    # ---- reporting ----
    def enabled(self, rule: Rule) -> bool:
        return self._enabled(rule.code)

    def expects_error(self, line: int) -> bool:
        """Whether `line` is inside `with pytest.raises(...)` / `assertRaises(...)` or the arguments of the
        callable form `pytest.raises(Error, fn, *args)`: code written to fail on purpose."""
        if self._expected is None:
            self._expected = expected_error_lines(self.scan) if "aises" in self.source else []
            if "def test" in self.source and "except" in self.source:
                self._expected += asserted_error_lines(self.tree)
        return any(start <= line <= end for start, end in self._expected)

    def report(self, rule: Rule, where: ast.AST | tuple[int, int, int, int], message: str,
               fixes: Iterable[Fix] = (), severity: Severity | None = None) -> None:
        if not self._enabled(rule.code):
            return
        line, col, end_line, end_col = where if isinstance(where, tuple) else self.span(where)
        context = ""
        if self.expects_error(line):
            # still reported (the value is invalid), but marked; never "fixed": the test wants the error
            context, fixes = "expected-error", ()
            message += " (in code a test expects to fail: the error is probably deliberate)"
            if not self._enabled(rule.code, context):
                return
        self.findings.append(Finding(rule.code, message, severity or rule.severity, line, col, end_line,
                                     end_col, tuple(fixes), context))


@dataclass
class LintResult:
    """Findings of one file (sorted), its cross-file facts, and whether it parsed."""

    findings: list[Finding]
    facts: FileFacts | None
    parsed: bool = True
    errors: list[str] = field(default_factory=list)  # checkers that crashed (a bug; logged)


#: The name after `def`/`class` on a line.
DEF_NAME = re.compile(r"\b(?:def|class)\s+(\w+)")

#: What `ast.parse` raises on code CPython cannot compile: bad syntax, NUL bytes, or nesting so deep
#: (a 100,000-term expression) that the parser runs out of stack or memory.
PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def parse(source: str, path: str) -> ast.Module:
    return ast.parse(source, filename=path, type_comments=False)


def split_lines(source: str) -> list[str]:
    """The lines of a text as `ast` and LSP count them (\\n, \\r\\n and \\r end a line; a form feed does not)."""
    return LINE_END.split(source.removesuffix("\n").removesuffix("\r")) if source else []


#: A line ending as Python's tokenizer and LSP see one.
LINE_END = re.compile(r"\r\n|\r|\n")


def _parse_error_finding(exc: BaseException) -> Finding:
    if isinstance(exc, RecursionError | MemoryError):
        return Finding(SYNTAX.code, "Python cannot compile this file (an expression or block nested too deeply "
                       f"for the parser: {type(exc).__name__}); split it up so the Lightning rules can run.",
                       SYNTAX.severity, 1, 0, 1, 1)
    line = getattr(exc, "lineno", None) or 1
    col = max((getattr(exc, "offset", None) or 1) - 1, 0)
    msg = getattr(exc, "msg", str(exc))
    return Finding(SYNTAX.code, f"Syntax error: {msg}; fix it so the Lightning rules can run.",
                   SYNTAX.severity, line, col, line, col + 1)


def analyse(source: str, path: str, tree: ast.Module | None = None, scan_cache: F.ScanCache | None = None,
            project: F.Project | None = None, facts_cache: FactsCache | None = None
            ) -> tuple[ast.Module, dict[str, str], bool, F.Scan, FileFacts]:
    """Parse (unless `tree` is given), scan the file for the rules, and extract its cross-file facts (the
    same extractor as the server's index; module names relative to the project's roots)."""
    tree = tree if tree is not None else parse(source, path)
    sc = F.scan(tree, scan_cache)
    known = project.get(path) if project is not None else None
    if known is not None and known.parsed and known.digest == text_digest(source):
        return tree, sc.imports, sc.star_lightning, sc, known  # the index extracted them from this very text
    module, is_package = project.module_name(path) if project is not None else ("", False)
    facts = extract_facts(tree, source, os.path.abspath(path), module, is_package, cache=facts_cache)
    return tree, sc.imports, sc.star_lightning, sc, facts


def file_facts_of(source: str, path: str, project: F.Project | None = None,
                  trees: dict[str, ast.Module] | None = None) -> FileFacts | None:
    """Only the cross-file facts of a file (None when it does not parse); `trees` keeps the parse by path."""
    try:
        tree = parse(source, path)
    except PARSE_ERRORS:
        return None
    if trees is not None:
        trees[path] = tree
    module, is_package = project.module_name(path) if project is not None else ("", False)
    return extract_facts(tree, source, os.path.abspath(path), module, is_package)


_RAISES = ("raises", "assertRaises", "assertRaisesRegex")


def expected_error_lines(sc: F.Scan) -> list[tuple[int, int]]:
    """Line ranges of code that is expected to raise: `with pytest.raises(...):` bodies (and unittest's
    `assertRaises`), and the callable form's arguments."""
    out: list[tuple[int, int]] = []
    for node, _cls, _method in sc.withs:
        for item in node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and (F.dotted(expr.func) or "").rpartition(".")[2] in _RAISES:
                out.append((node.body[0].lineno, node.end_lineno or node.lineno))
                break
    for site in sc.calls:
        call = site.call
        if len(call.args) >= 2 and (F.dotted(call.func) or "").rpartition(".")[2] in _RAISES:
            out.append((call.args[1].lineno, call.end_lineno or call.lineno))
    return out


def asserted_error_lines(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of `try:` bodies with an `except` clause in test functions (`def test_*`): a test that
    catches the error to assert on it."""
    out: list[tuple[int, int]] = []
    tests = [node for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")]
    for fn in tests:
        for node in ast.walk(fn):
            if isinstance(node, ast.Try) and node.handlers and node.body:
                out.append((node.body[0].lineno, node.body[-1].end_lineno or node.body[-1].lineno))
    return out


def _ensure_rules_loaded() -> None:
    from . import rules  # noqa: F401  (importing registers the checkers)


def lint_source(source: str, path: str = "<string>", project: F.Project | None = None,
                config: LintConfig | None = None, parser: Callable[[str, str], ast.Module] | None = None,
                scan_cache: F.ScanCache | None = None, facts_cache: FactsCache | None = None) -> LintResult:
    """Lint one file. With `project`, cross-file facts come from it (the file's own facts are updated in it).

    `parser(path, source)` replaces `ast.parse` and `scan_cache` keeps per-statement walks (the server's
    worker passes both, so an edit re-parses and re-walks only the statements it touched).
    """
    _ensure_rules_loaded()
    config = config or LintConfig()
    try:
        if project is None:
            project = F.Project()
        tree, imports, star, sc, facts = analyse(source, path, parser(path, source) if parser else None,
                                                 scan_cache, project, facts_cache)
    except PARSE_ERRORS as exc:
        findings = [_parse_error_finding(exc)] if config.enabled(SYNTAX.code, path) else []
        return LintResult(findings, None, parsed=False)
    project.put(path, facts)
    ctx = Context(path, source, split_lines(source), tree, imports, star, sc, project, facts)
    ctx._enabled = lambda code, context="": config.enabled(code, path, context)
    errors: list[str] = []
    for rules, checker in CHECKERS:
        if any(config.enabled(r.code, path) for r in rules):
            try:
                checker(ctx)
            except Exception as exc:  # one broken checker must not take every diagnostic down
                log.exception("lint checker %s failed on %s", checker.__name__, path)
                errors.append(f"{checker.__name__}: {type(exc).__name__}: {exc}")
    from .safety import settle

    try:
        findings = settle(ctx, apply_noqa(source, ctx.findings))
    except Exception as exc:  # the fix policy failing must not take diagnostics down: offer no fixes then
        log.exception("fix safety failed on %s", path)
        errors.append(f"settle: {type(exc).__name__}: {exc}")
        findings = [dataclasses.replace(f, fixes=()) for f in apply_noqa(source, ctx.findings)]
    findings.sort(key=Finding.sort_key)
    return LintResult(findings, facts, errors=errors)


_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+\d+(?:[\s,]+[A-Za-z]+\d+)*))?", re.IGNORECASE)


def noqa_lines(source: str) -> dict[int, frozenset[str] | None]:
    """Line -> codes silenced there (None = every code), from real comments only (not string contents)."""
    if "noqa" not in source.lower():
        return {}
    out: dict[int, frozenset[str] | None] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type != tokenize.COMMENT:
                continue
            match = _NOQA.search(tok.string)
            if not match:
                continue
            line = tok.start[0]
            codes = match.group("codes")
            if codes is None:
                out[line] = None
            else:
                new = frozenset(c.upper() for c in re.split(r"[\s,]+", codes.strip()) if c)
                prev = out.get(line, frozenset())
                out[line] = None if prev is None and line in out else (prev or frozenset()) | new
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def apply_noqa(source: str, findings: list[Finding]) -> list[Finding]:
    """Drop findings whose first or last line carries `# noqa` or `# noqa: CODE` (a prefix works too)."""
    marks = noqa_lines(source)
    if not marks:
        return findings

    def silenced(f: Finding) -> bool:
        for line in {f.line, f.end_line}:
            if line in marks:
                codes = marks[line]
                if codes is None or any(f.code.startswith(c) for c in codes):
                    return True
        return False

    return [f for f in findings if not silenced(f)]


def rule_table() -> list[Rule]:
    """Every declared rule, sorted by code."""
    _ensure_rules_loaded()
    return [RULES[c] for c in sorted(RULES)]
