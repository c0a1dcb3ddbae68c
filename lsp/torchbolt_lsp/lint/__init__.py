"""Lightning diagnostics: one engine (`lint_source`) behind the language server and `torchbolt check`.

Codes come in families (TB0 syntax, TB1 hooks, TB2 devices, TB3 optimization, TB4 logging,
TB5 arguments), each rule declared next to its checker in `lint/rules/`. Importing this package never
imports torch or libcst; fixes (`lint.fixes`) load libcst only when a fix is requested.
"""

from __future__ import annotations

from ..analysis.facts import FileFacts
from .config import ConfigError, LintConfig
from .engine import LintResult, file_facts_of, lint_source, rule_table
from .facts import Project
from .model import FAMILIES, RULES, Finding, Fix, Rule, Severity

__all__ = [
    "FAMILIES", "RULES", "ConfigError", "FileFacts", "Finding", "Fix", "LintConfig", "LintResult", "Project",
    "Rule", "Severity", "file_facts_of", "lint_source", "rule_table",
]
