"""Helpers for the diagnostics/code-action tests against the real server (pytest-lsp)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from lsprotocol import types
from pytest_lsp import LanguageClient

TIMEOUT_S = float(__import__('os').environ.get('LINT_LSP_TIMEOUT', '20'))


def record_publishes(client: LanguageClient) -> list[types.PublishDiagnosticsParams]:
    """Keep every publishDiagnostics the client receives (pytest-lsp only keeps the latest per uri)."""
    log: list[types.PublishDiagnosticsParams] = []
    features = client.protocol.fm.features
    original = features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS]

    def recording(*args: Any) -> Any:
        log.append(args[-1])
        return original(*args)

    features[types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = recording
    return log


async def wait_pushed(client: LanguageClient, uri: str,
                      pred: Callable[[Sequence[types.Diagnostic]], bool]) -> Sequence[types.Diagnostic]:
    """Wait (on messages, no sleeps) until the diagnostics pushed for `uri` satisfy `pred`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while True:
        # register for the next notification *before* looking, so none can slip through in between
        fut = client.protocol.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        current = client.diagnostics.get(uri)
        if current is not None and pred(current):
            return current
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"diagnostics for {uri} never satisfied the condition; last: "
                                 f"{[(d.code, d.message) for d in current or []]}")
        await asyncio.wait_for(asyncio.wrap_future(fut) if not isinstance(fut, asyncio.Future) else fut, remaining)


async def pull(client: LanguageClient, uri: str, previous: str | None = None) -> Any:
    return await client.text_document_diagnostic_async(types.DocumentDiagnosticParams(
        text_document=types.TextDocumentIdentifier(uri=uri), previous_result_id=previous))


def codes(diags: Sequence[types.Diagnostic]) -> list[str]:
    return sorted(str(d.code) for d in diags)


def apply_text_edits(text: str, edits: Sequence[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions; ASCII test files) to a text, as an editor would."""
    lines = text.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def offset(pos: types.Position) -> int:
        if pos.line >= len(starts):
            return len(text)
        return starts[pos.line] + pos.character

    out = text
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        out = out[:offset(edit.range.start)] + edit.new_text + out[offset(edit.range.end):]
    return out


def full_range(text: str) -> types.Range:
    lines = text.split("\n")
    return types.Range(start=types.Position(line=0, character=0),
                       end=types.Position(line=len(lines) - 1, character=len(lines[-1])))
