"""Which rules run where: `[tool.torchbolt.lint]` in pyproject.toml, editor settings, command-line flags.

Codes are selected by prefix (`TB1` selects every hooks rule, `TB101` one rule, `TB`/`ALL` everything).
A code runs when the longest matching prefix among `select` is longer than the longest matching
prefix among `ignore` (the more specific entry wins; on a tie, ignore wins), so
`select = ["TB1"], ignore = ["TB103"]` works, and so does `ignore = ["TB1"], select = ["TB101"]`.

Besides codes, `ignore` and `per-file-ignores` take finding contexts: `"expected-error"` silences findings
in code a test expects to fail (`pytest.raises`, `assertRaises`, try/except in `test_*`), e.g.
`per-file-ignores = {"tests/**" = ["expected-error"]}`.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import CONTEXTS, FAMILIES, RULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 ships no TOML reader
    import tomli as tomllib


class ConfigError(ValueError):
    """A bad lint setting (unknown code prefix, wrong type); the message names the setting and the fix."""


def _prefixes(values: Iterable[str], where: str) -> tuple[str, ...]:
    from .engine import rule_table

    rule_table()  # make sure every rule is declared before validating codes against them
    out = []
    for raw in values:
        if not isinstance(raw, str):
            raise ConfigError(f"{where}: expected rule codes as strings, got {raw!r}")
        code = raw.strip().upper()
        if not code:
            continue
        if code.lower() in CONTEXTS:
            out.append(code.lower())
            continue
        if code == "ALL":
            code = "TB"
        if not code.startswith("TB") or not (
            code == "TB" or any(r.startswith(code) for r in RULES) or code in FAMILIES or code == "TB0"
        ):
            known = ", ".join(sorted(FAMILIES))
            raise ConfigError(f"{where}: {raw!r} matches no torchbolt rule; use a code such as TB101, a "
                              f"family prefix ({known}) or a finding context ({', '.join(CONTEXTS)}).")
        out.append(code)
    return tuple(out)


@dataclass(frozen=True)
class LintConfig:
    """The effective selection of rules, plus per-file ignores (glob -> code prefixes)."""

    select: tuple[str, ...] = ("TB",)
    ignore: tuple[str, ...] = ()
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    root: Path | None = None  # per-file globs are matched against paths relative to this folder

    def enabled(self, code: str, path: str | None = None, context: str = "") -> bool:
        """Whether `code` is reported for a file at `path`, for a finding in `context` (see CONTEXTS)."""
        sel = max((len(p) for p in self.select if code.startswith(p)), default=-1)
        ign = max((len(p) for p in self.ignore if code.startswith(p)), default=-1)
        if sel < 0 or ign >= sel or context and context in self.ignore:
            return False
        if path and self.per_file_ignores:
            rel = self._relative(path)
            for pattern, codes in self.per_file_ignores.items():
                if _glob_match(rel, pattern) and any(code.startswith(c) or c == context for c in codes):
                    return False
        return True

    def _relative(self, path: str) -> str:
        p = Path(path)
        if self.root is not None:
            try:
                return p.resolve().relative_to(self.root.resolve()).as_posix()
            except ValueError:
                pass
        return p.as_posix()

    def merged(self, select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
               extend_ignore: Iterable[str] = ()) -> LintConfig:
        """A copy with `select` replaced (when given) and `ignore` replaced or extended."""
        sel = _prefixes(select, "select") if select is not None else self.select
        ign = _prefixes(ignore, "ignore") if ignore is not None else self.ignore
        ign = ign + _prefixes(extend_ignore, "ignore")
        return LintConfig(sel or ("TB",), ign, self.per_file_ignores, self.root)


def _glob_match(rel: str, pattern: str) -> bool:
    if fnmatch.fnmatch(rel, pattern):
        return True
    # a pattern without a folder matches the file name anywhere, like ruff
    return "/" not in pattern and fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern)


def from_table(table: Mapping[str, Any], root: Path | None, where: str = "[tool.torchbolt.lint]") -> LintConfig:
    """Build a config from the `[tool.torchbolt.lint]` table; unknown keys are an error naming the key."""
    known = {"select", "ignore", "per-file-ignores", "per_file_ignores", "extend-ignore"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; allowed: select, ignore, "
                          "extend-ignore, per-file-ignores")
    select = table.get("select", ["TB"])
    ignore = list(table.get("ignore", [])) + list(table.get("extend-ignore", []))
    for key, value in (("select", select), ("ignore", ignore)):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list of codes, e.g. {key} = [\"TB1\"]")
    pfi_raw = table.get("per-file-ignores", table.get("per_file_ignores", {}))
    if not isinstance(pfi_raw, dict):
        raise ConfigError(f"{where}: per-file-ignores must be a table of glob = [codes]")
    pfi = {}
    for glob, codes in pfi_raw.items():
        if not isinstance(codes, list):
            raise ConfigError(f"{where}: per-file-ignores.{glob!r} must be a list of codes")
        pfi[str(glob)] = _prefixes(codes, f"{where} per-file-ignores.{glob}")
    return LintConfig(_prefixes(select, f"{where} select") or ("TB",), _prefixes(ignore, f"{where} ignore"),
                      pfi, root)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.torchbolt.lint] table, if any."""
    here = start if start.is_dir() else start.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                continue
            if isinstance(data.get("tool", {}).get("torchbolt", {}).get("lint"), dict):
                return candidate
    return None


def load(start: Path | None) -> LintConfig:
    """The configuration that applies at `start` (a file or folder); defaults when no table is found."""
    if start is None:
        return LintConfig()
    pyproject = find_pyproject(start.resolve())
    if pyproject is None:
        return LintConfig(root=start.resolve() if start.is_dir() else start.resolve().parent)
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: invalid TOML ({exc}); fix the file") from exc
    return from_table(data["tool"]["torchbolt"]["lint"], pyproject.parent, f"{pyproject} [tool.torchbolt.lint]")
