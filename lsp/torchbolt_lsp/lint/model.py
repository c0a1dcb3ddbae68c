"""Plain records of the lint engine: rules (declared beside their checkers), findings and fix requests.

Nothing here depends on the LSP or on libcst: the engine produces `Finding`s with an optional `Fix`
*request* (what to change, as data); `torchbolt_lsp.lint.fixes` turns a request into text edits only
when a code action or `--fix` asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

#: Families of codes (documented in lint/README.md): a prefix selects a whole family.
FAMILIES: dict[str, str] = {
    "TB0": "syntax: the file does not parse, so no other rule can run",
    "TB1": "hooks: missing, misspelled, removed or mis-declared LightningModule/Callback hooks",
    "TB2": "devices: hard-coded devices and mode switches the Trainer already does",
    "TB3": "optimization: manual optimizer calls under automatic optimization and vice versa",
    "TB4": "logging: self.log placement, levels, values and monitored names",
    "TB5": "arguments: Trainer, callback, logger and self.log keyword arguments and values",
}


class Severity(IntEnum):
    """Same numbers as LSP's DiagnosticSeverity, so the server can pass them through."""

    ERROR = 1
    WARNING = 2
    INFO = 3
    HINT = 4


@dataclass(frozen=True)
class Fix:
    """A request for a quick fix: `kind` names a libcst transformation in `fixes.py`, `data` its inputs.

    `title` is what the editor shows ("Rename to training_step"). `safe` fixes provably keep what the
    code meant (`check --fix` applies them); unsafe ones (a guess, or a rewrite that can change what the
    code does) are applied only on request (`--unsafe-fixes`, or a code action titled so).
    """

    kind: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    safe: bool = True

    def __hash__(self) -> int:  # data holds only str/int/tuples; hash by a stable text form
        return hash((self.kind, self.title, self.safe, repr(sorted(self.data.items()))))


@dataclass(frozen=True)
class Finding:
    """One violation. Lines are 1-based, columns 0-based *character* offsets (not UTF-8 bytes)."""

    code: str
    message: str
    severity: Severity
    line: int
    col: int
    end_line: int
    end_col: int
    fixes: tuple[Fix, ...] = ()
    # where the finding sits, when that changes its meaning: "expected-error" inside `pytest.raises(...)` /
    # `assertRaises` (the invalid value is deliberate); `[tool.torchbolt.lint]` can ignore a context
    context: str = ""

    def sort_key(self) -> tuple[int, int, str]:
        return (self.line, self.col, self.code)


@dataclass(frozen=True)
class Rule:
    """A rule: its stable code, a short kebab-case name, what it checks, and its default severity."""

    code: str
    name: str
    summary: str
    severity: Severity
    fixable: bool = False


#: Every rule, by code. Filled by the `@rule` declarations in `lint/rules/*.py`.
RULES: dict[str, Rule] = {}


def declare(code: str, name: str, summary: str, severity: Severity, fixable: bool = False) -> Rule:
    """Declare a rule once, next to its checker; a duplicate code is a programming error."""
    if code in RULES:
        raise ValueError(f"lint rule code {code} is declared twice")
    if not any(code.startswith(prefix) for prefix in FAMILIES):
        raise ValueError(f"lint rule code {code} is not in a declared family ({', '.join(FAMILIES)})")
    rule = RULES[code] = Rule(code, name, summary, severity, fixable)
    return rule


#: Finding contexts a configuration may ignore like a code (`ignore = ["expected-error"]`, per path too).
CONTEXTS: tuple[str, ...] = ("expected-error",)

Checker = Callable[..., None]
