"""Inlay hints after each `self.log("name", ...)` and `monitor="name"`: the metric's latest value, trend,
sparkline and best value from the most recent run that reported it (`val_loss 0.231 ↓ ▇▅▄▂▁ best 0.219`);
and after each `lr=` in a LightningModule's `configure_optimizers`, the learning rate its latest Find LR run
suggested. Refreshed live by the run manager through `workspace/inlayHint/refresh`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types

from ..runs.anchors import LrAnchor, candidate_names, lr_anchors, metric_anchors
from ..runs.artifacts import lr_find_text, lr_literal

if TYPE_CHECKING:
    from ..document import Document
    from ..runs.record import RunRecord
    from ..server import TorchboltServer


@dataclass(frozen=True)
class LrSite:
    """An `lr=` value with a Find LR result for its class: where it is, what the hint says."""

    range: types.Range  # the value as written
    label: str
    anchor: LrAnchor
    record: RunRecord
    class_name: str

    @property
    def replacement(self) -> str | None:
        """The source text the quick fix writes, or None when there is nothing to rewrite here (the value
        is not a number literal, there is no suggestion, or it is already the suggestion)."""
        lr = (self.record.lr_find or {}).get("suggested_lr")
        if lr is None or self.anchor.literal is None:
            return None
        text = lr_literal(lr)
        return None if float(text) == self.anchor.literal else text


def lr_label(anchor: LrAnchor, record: RunRecord) -> str:
    """The hint after an `lr=` value: the suggestion, and where to change it when it is not written here."""
    result = record.lr_find or {}
    label = f"Find LR: {lr_find_text(result)}"
    if result.get("suggested_lr") is None or anchor.literal is not None:
        return label
    if anchor.attr is not None:
        return f"{label} · lr is {anchor.source}: change {anchor.where}"
    return f"{label} · lr is {anchor.source}: change it where that value is set"


def lr_sites(ls: TorchboltServer, doc: Document, rng: types.Range | None = None) -> list[LrSite]:
    """The `lr=` values of every LightningModule in the document whose class has a Find LR result."""
    manager = ls.run_manager
    path = ls.path_of(doc.uri)
    if not manager.records_for_path(path):
        return []
    try:
        targets = [t for t in manager.file_targets(doc.uri, doc.text) if t.kind == "module"]
    except Exception:
        return []
    out: list[LrSite] = []
    tree = doc.ast_module()
    for target in targets:
        rec = manager.lr_find_record(path, target.name)
        if rec is None:
            continue
        for anchor in lr_anchors(tree, target.name, doc.text):
            if rng is not None and not (rng.start.line <= anchor.end_line - 1 <= rng.end.line):
                continue
            where = doc.range_of_ast(anchor.line, anchor.col, anchor.end_line, anchor.end_col)
            out.append(LrSite(where, lr_label(anchor, rec), anchor, rec, target.name))
    return out


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
        hints = [types.InlayHint(position=pos, label=label, padding_left=True)
                 for pos, label in metric_labels(ls, doc, params.range)]
        hints += [types.InlayHint(position=site.range.end, label=site.label, padding_left=True)
                  for site in lr_sites(ls, doc, params.range)]
        return hints
