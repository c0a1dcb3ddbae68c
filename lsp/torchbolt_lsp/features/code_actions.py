"""Quick fixes for torchbolt diagnostics, "fix all of this kind", and `source.fixAll.torchbolt`.

Unsafe fixes (`Fix.safe` false: guesses and migrations that may change what the code does) are offered
as quick fixes titled "(unsafe)", never preferred, and never part of `source.fixAll`.

Fix edits are computed here, on request, with libcst (`torchbolt_lsp.lint.fixes`), never on the
didChange path. Every action carries a `WorkspaceEdit` of minimal `TextEdit`s against the document
version the findings were computed for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..lint import lint_source
from ..lint.fixes import FixError, TextEdit, edits_between, fix_all, fix_edits
from ..lint.model import Finding
from .diagnostics import SOURCE, LintState, Positions, current, lint_project, to_diagnostic

if TYPE_CHECKING:
    from ..server import TorchboltServer

log = logging.getLogger(__name__)

#: The kind of the "apply every torchbolt fix" source action (editors run it on save when configured).
FIX_ALL_KIND = f"{types.CodeActionKind.SourceFixAll.value}.torchbolt"
#: Kind prefix of the run actions other features add (L3: source.torchbolt.fit, ...).
RUN_KIND = "source.torchbolt"


def _wanted(kind: str, only: list[str] | None) -> bool:
    """LSP filtering: an action kind is wanted when it equals or refines one of `only`."""
    if not only:
        return kind != FIX_ALL_KIND  # source actions only when asked for
    return any(kind == o or kind.startswith(f"{o}.") for o in only)


def _overlaps(f: Finding, pos: Positions, rng: types.Range) -> bool:
    r = pos.range(f.line, f.col, f.end_line, f.end_col)
    return (r.start.line, r.start.character) <= (rng.end.line, rng.end.character) and \
        (rng.start.line, rng.start.character) <= (r.end.line, r.end.character)


def _lsp_edits(edits: list[TextEdit], pos: Positions) -> list[types.TextEdit]:
    return [types.TextEdit(range=pos.range(e.line, e.col, e.end_line, e.end_col), new_text=e.new_text)
            for e in edits]


def compute_actions(ls: TorchboltServer, state: LintState, uri: str, version: int, text: str,
                    rng: types.Range, only: list[str] | None, context_diags: list[types.Diagnostic],
                    cached: list[Finding] | None = None) -> list[types.CodeAction]:
    """All code actions for a range of one document text (runs in a worker thread).

    `cached` are the findings the diagnostics feature computed for this exact text, when it has them
    (editors ask for code actions on every cursor move: no re-lint then).
    """
    path = ls.path_of(uri)
    project = lint_project(ls, state)

    def lint(source: str) -> list[Finding]:
        return lint_source(source, path, project, state.config).findings

    if cached is not None:
        findings = cached
    else:
        result = lint_source(text, path, project, state.config)
        if not result.parsed:
            return []
        findings = result.findings
    pos = Positions(text, ls.context.position_encoding)
    actions: list[types.CodeAction] = []
    fixable = [f for f in findings if f.fixes]

    def edit(edits: list[TextEdit]) -> types.WorkspaceEdit:
        return types.WorkspaceEdit(changes={uri: _lsp_edits(edits, pos)})

    def diagnostic_for(f: Finding) -> types.Diagnostic:
        mine = to_diagnostic(f, pos)
        for d in context_diags:
            if d.code == f.code and d.range == mine.range:
                return d
        return mine

    if _wanted(types.CodeActionKind.QuickFix.value, only):
        seen_codes: set[str] = set()
        for f in fixable:
            if not _overlaps(f, pos, rng):
                continue
            for i, fix in enumerate(f.fixes):
                try:
                    edits = fix_edits(text, f, fix)
                except FixError as exc:
                    log.info("fix %s for %s not applicable: %s", fix.kind, f.code, exc)
                    continue
                except Exception:  # a bug in one fix must not hide the other actions
                    log.exception("fix %s for %s failed", fix.kind, f.code)
                    continue
                if not edits:
                    continue
                # an unsafe fix may change what the code does (a guess, a migration): say so, never prefer it
                actions.append(types.CodeAction(
                    title=f"{fix.title} ({f.code})" + ("" if fix.safe else " (unsafe)"),
                    kind=types.CodeActionKind.QuickFix, diagnostics=[diagnostic_for(f)],
                    is_preferred=i == 0 and fix.safe, edit=edit(edits)))
            same = [g for g in fixable if g.code == f.code]
            safe_same = [g for g in same if any(x.safe for x in g.fixes)]
            if len(same) > 1 and f.code not in seen_codes:
                seen_codes.add(f.code)
                unsafe = len(safe_same) < 2  # "fix all" of safe fixes when there are several, else say unsafe

                def same_code(g: Finding, code: str = f.code) -> bool:
                    return g.code == code

                try:
                    new = fix_all(text, lint, want=same_code, unsafe=unsafe)
                except Exception:
                    log.exception("fix all %s failed", f.code)
                    new = text
                if new != text:
                    count = len(same) if unsafe else len(safe_same)
                    actions.append(types.CodeAction(
                        title=f"Fix all {f.code} in this file ({count})" + (" (unsafe)" if unsafe else ""),
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic_for(g) for g in (same if unsafe else safe_same)],
                        edit=edit(edits_between(text, new))))
    if fixable and _wanted(FIX_ALL_KIND, only):
        try:
            new = fix_all(text, lint)  # safe fixes only: editors run this on save
        except Exception:
            log.exception("fix all failed")
            new = text
        if new != text:
            actions.append(types.CodeAction(title="Fix all torchbolt findings", kind=FIX_ALL_KIND,
                                            edit=edit(edits_between(text, new))))
    return actions


def register(server: TorchboltServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND, RUN_KIND], resolve_provider=False))
    async def code_action(ls: TorchboltServer, params: types.CodeActionParams) -> Any:
        state: LintState | None = ls.lint_state
        doc = ls.document(params.text_document.uri)
        if doc is None or state is None:
            return None
        # source actions of other features (L3: Fit / Validate / Test / Stop / TensorBoard of the target here)
        extra = [a for provider in list(ls.code_action_providers) for a in provider(ls, params)]
        only = [str(k.value if hasattr(k, "value") else k) for k in (params.context.only or [])] or None
        ours = [d for d in params.context.diagnostics if d.source == SOURCE]
        if only is None and params.context.diagnostics and not ours:
            return extra or None  # the client asks about other tools' diagnostics only
        snap = doc.snapshot()
        hit = current(ls, state, snap.uri)
        cached = hit.findings if hit is not None and hit.text == snap.text else None
        if cached is not None and not any(f.fixes for f in cached):
            return extra or None  # nothing fixable: answer at once (this runs on every cursor move)
        loop = asyncio.get_running_loop()
        actions = await loop.run_in_executor(ls.thread_pool, compute_actions, ls, state, snap.uri, snap.version,
                                             snap.text, params.range, only, ours, cached)
        return [*(actions or []), *extra] or None
