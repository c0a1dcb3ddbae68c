"""Inlay hints after each `self.log("name", ...)` and `monitor="name"`: the metric's latest value, trend,
sparkline and best value from the most recent run that reported it (`val_loss 0.231 ↓ ▇▅▄▂▁ best 0.219`).
Refreshed live by the run manager through `workspace/inlayHint/refresh`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from ..runs.anchors import candidate_names, metric_anchors

if TYPE_CHECKING:
    from ..document import Document
    from ..server import TorchboltServer


def metric_labels(ls: TorchboltServer, doc: Document, rng: types.Range | None
                  ) -> list[tuple[types.Position, str]]:
    """(position after the call / argument, label) for every metric anchor with a known value."""
    path = ls.path_of(doc.uri)
    manager = ls.run_manager
    if not manager.records_for_path(path):
        return []
    out: list[tuple[types.Position, str]] = []
    seen: set[tuple[int, int, str]] = set()
    for anchor in metric_anchors(doc.ast_module()):
        if rng is not None and not (rng.start.line <= anchor.end_line - 1 <= rng.end.line):
            continue
        for name in candidate_names(anchor.name):
            rec = manager.metric_record(path, name)
            label = rec.hint(name) if rec is not None else None
            if label:
                pos = doc.range_of_ast(anchor.end_line, anchor.end_col, anchor.end_line, anchor.end_col).end
                key = (pos.line, pos.character, label)
                if key not in seen:
                    seen.add(key)
                    out.append((pos, label))
                break
    return out


def register(server: TorchboltServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT, types.InlayHintOptions(resolve_provider=False))
    def inlay_hints(ls: TorchboltServer, params: types.InlayHintParams) -> list[types.InlayHint]:
        if not ls.context.settings.inlay_hints_enabled:
            return []
        doc = ls.document(params.text_document.uri)
        if doc is None:
            return []
        return [types.InlayHint(position=pos, label=label, padding_left=True)
                for pos, label in metric_labels(ls, doc, params.range)]
