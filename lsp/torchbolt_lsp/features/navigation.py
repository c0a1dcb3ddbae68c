"""Navigation for metric names: go to definition from a `monitor="val_loss"` string (or any string naming
a logged metric) to the `self.log("val_loss", ...)` calls, and find references of a metric name across the
workspace (log calls and monitor references, including the forked `_step`/`_epoch` names)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..analysis.facts import LoggedMetric, Span
from .common import situation
from .hover import _string_at

if TYPE_CHECKING:
    from ..server import TorchboltServer


def _location(ls: TorchboltServer, path: str, span: Span) -> types.Location:
    return types.Location(
        uri=ls.uri_of(path) if path.startswith("/") else path,
        range=types.Range(
            start=types.Position(line=span.line, character=span.col),
            end=types.Position(line=span.end_line, character=span.end_col),
        ),
    )


def metric_at(ls: TorchboltServer, uri: str, position: types.Position) -> str | None:
    """The metric name in the string literal under the cursor, when the workspace logs or monitors it."""
    sit = situation(ls, uri, position)
    if sit is None or sit.ctx.string is None:
        return None
    ls.ensure_all_indexed()
    literal = _string_at(sit)
    if literal is None:
        return None
    name = literal[0]
    if ls.index.metric_definitions(name) or ls.index.monitor_refs(name):
        return name
    return None


def definitions(ls: TorchboltServer, uri: str, position: types.Position) -> list[types.Location]:
    """The log calls that produce the metric under the cursor."""
    name = metric_at(ls, uri, position)
    if name is None:
        return []
    return [_location(ls, path, metric.span) for path, metric in ls.index.metric_definitions(name)]


def _family(ls: TorchboltServer, name: str) -> tuple[list[tuple[str, LoggedMetric]], set[str]]:
    """Log calls of the metric's base name and every name they produce."""
    defs = ls.index.metric_definitions(name)
    base_names = {m.name for _, m in defs if m.name} or {name}
    logs = [(p, m) for p, m in ls.index.logged_metrics() if m.name in base_names]
    produced = {n for _, m in logs for n in m.produced} | base_names
    return logs, produced


def references(
    ls: TorchboltServer, uri: str, position: types.Position, include_declaration: bool
) -> list[types.Location]:
    """Log calls (when include_declaration) and monitor references of the metric under the cursor."""
    name = metric_at(ls, uri, position)
    if name is None:
        return []
    logs, produced = _family(ls, name)
    out = [_location(ls, p, m.span) for p, m in logs] if include_declaration else []
    for produced_name in sorted(produced):
        out.extend(_location(ls, p, ref.span) for p, ref in ls.index.monitor_refs(produced_name))
    return out


def register(server: TorchboltServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: TorchboltServer, params: types.DefinitionParams) -> list[types.Location] | None:
        return definitions(ls, params.text_document.uri, params.position) or None

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def on_references(ls: TorchboltServer, params: types.ReferenceParams) -> list[types.Location] | None:
        return (
            references(ls, params.text_document.uri, params.position, params.context.include_declaration)
            or None
        )
