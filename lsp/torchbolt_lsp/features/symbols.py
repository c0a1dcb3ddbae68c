"""Document symbols: Lightning classes (modules, datamodules, callbacks) with their hooks, and the Trainer
calls of a file. Hierarchical when the client supports it, flat otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from torchbolt import catalog

from ..analysis.facts import Span

if TYPE_CHECKING:
    from ..server import TorchboltServer

_KIND_LABEL = {"module": "LightningModule", "datamodule": "LightningDataModule", "callback": "Callback"}


def _range(span: Span) -> types.Range:
    return types.Range(
        start=types.Position(line=span.line, character=span.col),
        end=types.Position(line=span.end_line, character=span.end_col),
    )


def document_symbols(ls: TorchboltServer, uri: str) -> list[types.DocumentSymbol]:
    """Hierarchical symbols of an open document (empty for unknown documents)."""
    doc = ls.document(uri)
    if doc is None:
        return []
    ls.ensure_indexed(doc)
    path = ls.path_of(uri)
    facts = ls.index.get(path)
    if facts is None:
        return []
    out: list[types.DocumentSymbol] = []
    for cls in facts.classes:
        kind = ls.index.class_kind(path, cls.name)
        if kind is None:
            continue
        hooks = catalog.HOOKS_BY_OWNER[kind]
        children = [
            types.DocumentSymbol(
                name=m.name,
                kind=types.SymbolKind.Method,
                detail=("hook · " + ", ".join(hooks[m.name].entry_points))
                if m.name in hooks
                else ("removed 1.x hook" if m.name in catalog.REMOVED_HOOKS else "method"),
                range=_range(m.def_span),
                selection_range=_range(m.span),
            )
            for m in cls.methods
            if m.name in hooks or m.name in catalog.REMOVED_HOOKS
        ]
        out.append(
            types.DocumentSymbol(
                name=cls.name,
                kind=types.SymbolKind.Class,
                detail=_KIND_LABEL[kind],
                range=_range(cls.def_span),
                selection_range=_range(cls.span),
                children=children,
            )
        )
    for call in facts.calls:
        if call.callee != "Trainer":
            continue
        detail = ", ".join(f"{k.name}={k.value_source}" for k in call.keywords)
        out.append(
            types.DocumentSymbol(
                name="Trainer(...)",
                kind=types.SymbolKind.Object,
                detail=detail[:120],
                range=_range(call.span),
                selection_range=_range(call.func_span),
            )
        )
    out.sort(key=lambda s: (s.range.start.line, s.range.start.character))
    return out


def _flatten(
    uri: str, symbols: list[types.DocumentSymbol], container: str | None = None
) -> list[types.SymbolInformation]:
    out = []
    for sym in symbols:
        out.append(
            types.SymbolInformation(
                name=sym.name,
                kind=sym.kind,
                container_name=container,
                location=types.Location(uri=uri, range=sym.range),
            )
        )
        out.extend(_flatten(uri, list(sym.children or []), sym.name))
    return out


def register(server: TorchboltServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(
        ls: TorchboltServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol] | list[types.SymbolInformation]:
        symbols = document_symbols(ls, params.text_document.uri)
        if ls.context.hierarchical_symbols:
            return symbols
        return _flatten(params.text_document.uri, symbols)
