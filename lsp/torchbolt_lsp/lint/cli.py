"""`torchbolt check`: the lint engine on the command line, for CI and pre-commit.

`main(argv) -> int` returns 0 when clean, 1 with findings (or, with --diff, pending fixes) and 2 on
usage errors, unreadable files or internal errors (a crash never looks like "findings"). `--fix`
applies safe fixes only; `--unsafe-fixes` adds the ones that may change what the code does. It builds the same workspace index the server keeps (all given files first, then each
file is linted against it), so cross-file rules (inherited hooks, monitored names) agree with the
editor. Never imports torch.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import gc
import io
import json
import os
import sys
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from . import config as lint_config
from .engine import PARSE_ERRORS, LintResult, file_facts_of, lint_source, parse, rule_table
from .facts import Project
from .model import RULES, Finding, Fix, Severity

#: Folders never searched when a directory is given.
_SKIP_DIRS = {".git", ".hg", ".venv", "venv", "env", "node_modules", "__pycache__", "build", "dist", ".tox",
              ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "site-packages"}
_FORMATS = ("text", "json", "github", "sarif")


class UsageError(Exception):
    """A bad command line or configuration (exit code 2)."""


#: Checker crashes of the last `check_paths` run (a bug in torchbolt; exit code 2).
internal_errors: list[str] = []


@dataclass
class FileReport:
    path: Path
    findings: list[Finding]


def _split_codes(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [c for v in values for c in v.replace(" ", ",").split(",") if c]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="torchbolt check",
        description="Lint Lightning code: hooks, devices, optimization, logging and Trainer/callback arguments.")
    p.add_argument("paths", nargs="*", help="files or folders to check (default: the current folder)")
    p.add_argument("--fix", action="store_true", help="apply the safe fixes in place")
    p.add_argument("--unsafe-fixes", action="store_true",
                   help="with --fix/--diff, also apply fixes that may change what the code does (guesses, migrations)")
    p.add_argument("--diff", action="store_true", help="print the fixes as a unified diff instead of writing them")
    p.add_argument("--select", action="append", metavar="CODES",
                   help="comma-separated codes or prefixes to check (replaces the configured selection)")
    p.add_argument("--ignore", action="append", metavar="CODES", help="comma-separated codes or prefixes to skip")
    p.add_argument("--output-format", default="text", choices=_FORMATS, help="how to print findings")
    p.add_argument("--config", metavar="PYPROJECT", help="read [tool.torchbolt.lint] from this pyproject.toml")
    p.add_argument("--list-rules", action="store_true", help="print every rule code and exit")
    return p


def iter_python_files(paths: Iterable[str]) -> list[Path]:
    """The .py files under the given paths, sorted; a missing path is a usage error."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or folder")
        if path.is_file():
            out.append(path)
            continue
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            out.extend(Path(folder) / f for f in sorted(files) if f.endswith(".py"))
    return sorted(dict.fromkeys(out))


def _load_config(args: argparse.Namespace) -> lint_config.LintConfig:
    try:
        if args.config:
            cfg_path = Path(args.config)
            if not cfg_path.is_file():
                raise UsageError(f"--config {args.config}: no such file")
            import tomllib

            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
            table = data.get("tool", {}).get("torchbolt", {}).get("lint", {})
            base = lint_config.from_table(table, cfg_path.parent.resolve(), f"{cfg_path} [tool.torchbolt.lint]")
        else:
            start = Path(args.paths[0]) if args.paths else Path.cwd()
            base = lint_config.load(start)
        return base.merged(select=_split_codes(args.select), extend_ignore=_split_codes(args.ignore) or ())
    except lint_config.ConfigError as exc:
        raise UsageError(str(exc)) from exc


@dataclass
class SourceFile:
    """A file's text as Python reads it (PEP 263 cookie or BOM honoured, line endings kept) and how to write it back."""

    path: Path
    text: str
    encoding: str


def read_source(path: Path) -> SourceFile:
    """Decode a Python file the way the interpreter does; OSError/SyntaxError/UnicodeDecodeError name the problem."""
    data = path.read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)  # "utf-8-sig" when there is a BOM
    except SyntaxError as exc:
        if "unknown encoding" in str(exc):
            raise
        data.decode("utf-8")  # no cookie and not UTF-8 in the first lines: name the bad byte
        raise
    return SourceFile(path, data.decode(encoding), encoding)


def check_project(root: Path | None) -> Project:
    """The workspace index `check` lints against: module names relative to the project folder (the
    configuration's, else the current one), installed packages read from its run interpreter."""
    from ..analysis.installed import installed_sources, run_interpreter

    folder = str((root or Path.cwd()).resolve())
    return Project.of_files({}, [folder, str(Path.cwd().resolve())], installed_sources(run_interpreter(folder)))


def write_source(src: SourceFile, text: str) -> None:
    """Write fixed text back in the file's own encoding (and BOM); line endings are already the file's."""
    src.path.write_bytes(text.encode(src.encoding))


def _read_error(path: Path, exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return (f"{path}: cannot decode as {exc.encoding} ({exc.reason} at byte {exc.start}); save it as UTF-8 "
                "or declare its encoding in a `# -*- coding: ... -*-` line")
    if isinstance(exc, SyntaxError):  # detect_encoding: an unknown or contradictory coding cookie
        return f"{path}: {exc.msg}; fix the `# -*- coding: ... -*-` line"
    if isinstance(exc, LookupError):
        return f"{path}: unknown encoding ({exc}); fix the `# -*- coding: ... -*-` line"
    return f"{path}: cannot read it ({exc.strerror if isinstance(exc, OSError) else exc})"


def check_paths(paths: list[Path], cfg: lint_config.LintConfig, fix: bool = False, diff_out: TextIO | None = None,
                unsafe: bool = False, errors: list[str] | None = None, stderr: TextIO | None = None
                ) -> tuple[list[FileReport], int, int]:
    """Lint (and optionally fix) files; returns the reports, how many fixes applied, files with a diff.

    A file that cannot be read or decoded adds a message to `errors` (and stderr) and is skipped; the
    others are still checked.
    """
    errors = errors if errors is not None else []
    stderr = stderr or sys.stderr
    sources: dict[Path, SourceFile] = {}
    for p in paths:
        try:
            sources[p] = read_source(p)
        except (OSError, UnicodeDecodeError, SyntaxError, LookupError) as exc:
            message = _read_error(p, exc)
            print(f"torchbolt check: {message}", file=stderr)
            errors.append(message)
    project = check_project(cfg.root)
    trees: dict[str, ast.Module] = {}  # each file is parsed once: for its facts, then for its rules
    for p, src in sources.items():
        facts = file_facts_of(src.text, str(p), project, trees)
        if facts is not None:
            project.put(str(p), facts)

    def parsed_once(path: str, text: str) -> ast.Module:
        tree = trees.pop(path, None)
        src = sources.get(Path(path))
        return tree if tree is not None and src is not None and text is src.text else parse(text, path)

    reports: list[FileReport] = []
    fixed = 0
    diffs = 0
    internal_errors.clear()
    for p, src in sources.items():
        result = lint_source(src.text, str(p), project, cfg, parser=parsed_once)
        for error in result.errors:
            print(f"torchbolt check: internal error in {p}: {error} (please report it)", file=stderr)
            internal_errors.append(error)
        if (fix or diff_out is not None) and any(fx.safe or unsafe for f in result.findings for fx in f.fixes):
            from .fixes import FixError, fix_all

            # the fixer re-lints between rounds: remember the texts already linted (the first round's text is
            # the one just linted, the last round's the fixed file), so no text is linted twice
            seen = {src.text: result}

            def relint(text: str, path: Path = p, seen: dict[str, LintResult] = seen) -> list[Finding]:
                if text not in seen:
                    seen.clear()
                    seen[text] = lint_source(text, str(path), project, cfg)
                return seen[text].findings

            applied: list[Fix] = []
            try:
                new = fix_all(src.text, relint, unsafe=unsafe, applied=applied)
            except (FixError, *PARSE_ERRORS) as exc:
                print(f"torchbolt check: {p}: could not apply fixes: {exc}", file=stderr)
                new, applied = src.text, []
            if new != src.text:
                if diff_out is not None:
                    diffs += 1
                    diff_out.writelines(difflib.unified_diff(
                        src.text.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{p}", f"b/{p}"))
                if fix:
                    try:
                        write_source(src, new)
                    except (OSError, UnicodeEncodeError) as exc:
                        message = f"{p}: cannot write the fixes ({exc})"
                        print(f"torchbolt check: {message}", file=stderr)
                        errors.append(message)
                        reports.append(FileReport(p, result.findings))
                        continue
                    fixed += len(applied)
                    result = seen.get(new) or lint_source(new, str(p), project, cfg)
        reports.append(FileReport(p, result.findings))
    return reports, fixed, diffs


# --------------------------------------------------------------------------------------------------
# Output formats
# --------------------------------------------------------------------------------------------------
def _severity_name(sev: Severity) -> str:
    return {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info", Severity.HINT: "hint"}[sev]


def format_text(reports: list[FileReport], fixed: int, out: TextIO) -> None:
    total = fixable = unsafe = 0
    for rep in reports:
        for f in rep.findings:
            total += 1
            safe = any(fx.safe for fx in f.fixes)
            mark = " [*]" if safe else ""  # [*]: `--fix` fixes it
            fixable += safe
            unsafe += bool(f.fixes) and not safe
            out.write(f"{rep.path}:{f.line}:{f.col + 1}: {f.code}{mark} {f.message}\n")
    if fixed:
        out.write(f"Fixed {fixed} finding{'s' * (fixed != 1)}.\n")
    if total:
        hints = [f"{fixable} fixable with --fix"] if fixable else []
        if unsafe:
            hints.append(f"{unsafe} more with --fix --unsafe-fixes")
        hint = f" ({'; '.join(hints)})" if hints else ""
        out.write(f"Found {total} finding{'s' * (total != 1)}{hint}.\n")
    else:
        out.write("All checks passed!\n")


def format_json(reports: list[FileReport], out: TextIO) -> None:
    items = []
    for rep in reports:
        for f in rep.findings:
            items.append({
                "code": f.code, "name": RULES[f.code].name, "message": f.message,
                "severity": _severity_name(f.severity), "filename": str(rep.path),
                "location": {"row": f.line, "column": f.col + 1},
                "end_location": {"row": f.end_line, "column": f.end_col + 1},
                "fix": ({"title": f.fixes[0].title, "kind": f.fixes[0].kind,
                         "applicability": "safe" if f.fixes[0].safe else "unsafe"} if f.fixes else None),
            })
    json.dump(items, out, indent=2)
    out.write("\n")


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_github(reports: list[FileReport], out: TextIO) -> None:
    for rep in reports:
        for f in rep.findings:
            level = "error" if f.severity == Severity.ERROR else "warning"
            out.write(f"::{level} file={_gh_escape(str(rep.path), True)},line={f.line},col={f.col + 1},"
                      f"endLine={f.end_line},endColumn={f.end_col + 1},title={_gh_escape(f.code, True)}::"
                      f"{_gh_escape(f'{f.code} {f.message}')}\n")


def format_sarif(reports: list[FileReport], out: TextIO) -> None:
    from torchbolt_lsp import __version__ as version

    rules = rule_table()
    index = {r.code: i for i, r in enumerate(rules)}
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.HINT: "note"}
    results = []
    for rep in reports:
        for f in rep.findings:
            results.append({
                "ruleId": f.code, "ruleIndex": index[f.code], "level": level[f.severity],
                "message": {"text": f.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": Path(rep.path).as_posix()},
                    "region": {"startLine": f.line, "startColumn": f.col + 1, "endLine": f.end_line,
                               "endColumn": f.end_col + 1}}}],
            })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {
            "name": "torchbolt-check", "version": version,
            "rules": [{"id": r.code, "name": r.name, "shortDescription": {"text": r.summary},
                       "defaultConfiguration": {"level": level[r.severity]}} for r in rules]}},
            "results": results}],
    }
    json.dump(doc, out, indent=2)
    out.write("\n")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run `torchbolt check` with `argv` (without the program name); returns the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse prints its own message
        return 0 if exc.code in (0, None) else 2
    if args.list_rules:
        for rule in rule_table():
            stdout.write(f"{rule.code} {rule.name}{' [*]' if rule.fixable else ''}: {rule.summary}\n")
        return 0
    if args.fix and args.diff:
        stderr.write("torchbolt check: use either --fix (write the fixes) or --diff (show them), not both\n")
        return 2
    if args.unsafe_fixes and not (args.fix or args.diff):
        stderr.write("torchbolt check: --unsafe-fixes goes with --fix or --diff\n")
        return 2
    file_errors: list[str] = []
    try:
        cfg = _load_config(args)
        files = iter_python_files(args.paths or ["."])
        # a short-lived batch run over ASTs without reference cycles: cyclic GC passes are pure overhead
        gc.disable()
        try:
            reports, fixed, diffs = check_paths(files, cfg, fix=args.fix, diff_out=stdout if args.diff else None,
                                                unsafe=args.unsafe_fixes, errors=file_errors, stderr=stderr)
        finally:
            gc.enable()
    except UsageError as exc:
        stderr.write(f"torchbolt check: {exc}\n")
        return 2
    except Exception as exc:  # a bug in torchbolt: exit 2 with one line, never a traceback read as "findings"
        stderr.write(f"torchbolt check: internal error: {type(exc).__name__}: {exc} (please report it)\n")
        return 2
    if args.diff:
        stderr.write(f"{diffs} file{'s' * (diffs != 1)} would be changed.\n" if diffs else "No fixes to apply.\n")
        return 2 if file_errors or internal_errors else 1 if diffs else 0
    fmt = args.output_format
    if fmt == "text":
        format_text(reports, fixed, stdout)
    elif fmt == "json":
        format_json(reports, stdout)
    elif fmt == "github":
        format_github(reports, stdout)
    else:
        format_sarif(reports, stdout)
    if internal_errors or file_errors:
        return 2  # never "findings" when something could not be checked
    return 1 if any(r.findings for r in reports) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
