"""Map a failed run's traceback onto the workspace: which frames become diagnostics, and where.

Pure functions over the `failed` event's frames, so the mapping is testable without a server.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only; pydantic loads at the first run, not at server start
    from torchbolt.events import Failed, Frame

_NOT_USER_CODE = ("site-packages", "dist-packages", f"{os.sep}.venv{os.sep}", f"{os.sep}venv{os.sep}",
                  f"{os.sep}.tox{os.sep}", f"{os.sep}.nox{os.sep}")


@dataclass(frozen=True)
class Related:
    """A frame shown as related information of the main diagnostic."""

    path: str
    line: int  # 0-based
    message: str


@dataclass(frozen=True)
class FailureDiagnostic:
    """One diagnostic to publish: file, 0-based line, message, severity ('error'|'information')."""

    path: str
    line: int
    message: str
    severity: str = "error"
    code_line: str = ""
    related: tuple[Related, ...] = field(default_factory=tuple)


def is_workspace_file(path: str, roots: Sequence[str]) -> bool:
    """True for a file under one of the workspace roots that is not an installed package or a venv."""
    real = os.path.realpath(path)
    for root in roots:
        base = os.path.realpath(root)
        if real == base or real.startswith(base.rstrip(os.sep) + os.sep):
            rest = real[len(base):]
            return not any(part in rest for part in _NOT_USER_CODE) and not os.path.basename(real).startswith("<")
    return False


def headline(failed: Failed) -> str:
    """`ZeroDivisionError: division by zero` (first line of the message only)."""
    first = failed.message.strip().splitlines()[0] if failed.message.strip() else ""
    return f"{failed.error_type}: {first}" if first else failed.error_type


def failure_diagnostics(failed: Failed, roots: Sequence[str], fallback: tuple[str, int] | None = None,
                        ) -> list[FailureDiagnostic]:
    """Diagnostics for a failure: an error at the innermost workspace frame (the raising line) carrying the
    other workspace frames as related information, and an information diagnostic at each of those frames.

    With no workspace frame at all (e.g. a bad Trainer argument raised inside the runtime), the error goes
    to `fallback` (path, 0-based line): the run target's definition.
    """
    title = headline(failed)
    phase = "before training started" if failed.phase == "setup" else "during the run"
    if failed.rank is not None:  # one process of a multi-process run raised: say which
        phase = f"on rank {failed.rank}, {phase}"
    user: list[Frame] = [f for f in failed.frames if is_workspace_file(f.file, roots)]
    if not user:
        if fallback is None:
            return []
        return [FailureDiagnostic(fallback[0], fallback[1], f"{title} ({phase}; see the run's log for the traceback)")]
    raising = user[-1]
    callers = user[:-1]
    related = tuple(Related(f.file, max(f.line - 1, 0), f"called from {f.function}: {f.code}".rstrip(": "))
                    for f in reversed(callers))
    diags = [FailureDiagnostic(raising.file, max(raising.line - 1, 0), f"{title} ({phase})", "error",
                               raising.code, related)]
    for f in callers:
        diags.append(FailureDiagnostic(
            f.file, max(f.line - 1, 0),
            f"{failed.error_type} raised below this call (in {raising.function}, "
            f"{os.path.basename(raising.file)}:{raising.line})", "information", f.code,
            (Related(raising.file, max(raising.line - 1, 0), title),)))
    return diags
