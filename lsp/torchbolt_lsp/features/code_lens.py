"""Code lenses, in a fixed order: Fit / Validate / Test / Find LR / TensorBoard (then Stop while it runs; a
Stop clicked after the run ended only says so) above each LightningModule,
a "Fit with <Module>" above each LightningDataModule, Run above `trainer.fit(`-style calls in scripts, and,
for clients without inlay hints, the metric hint text above each `self.log` / `monitor=` line and the Find LR
suggestion above each `lr=` of `configure_optimizers`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from .inlay_hints import lr_sites, metric_labels

if TYPE_CHECKING:
    from ..runs.targets import Target
    from ..server import TorchboltServer


def _lens(rng: types.Range, title: str, command: str, arg: dict[str, Any]) -> types.CodeLens:
    return types.CodeLens(range=rng, command=types.Command(title=title, command=command, arguments=[arg]))


def target_lenses(uri: str, target: Target, running: bool) -> list[types.CodeLens]:
    """The lenses of one run target (pure: no server needed)."""
    # one Range for the target's lenses (lsprotocol validates every object built: a 20,000-line file has
    # thousands of lenses)
    at = types.Range(types.Position(target.line, target.col), types.Position(target.line, target.end_col))
    if target.kind == "script":
        arg = {"uri": uri, "position": {"line": target.line, "character": target.col}}
        lenses = [_lens(at, f"▶ Run {os.path.basename(target.path)}", f"torchbolt.{target.fn or 'fit'}", arg)]
    elif target.kind == "datamodule":
        arg = {"uri": uri, "className": target.name}
        lenses = [_lens(at, "▶ Fit with this data", "torchbolt.fit", arg)]
    else:
        arg = {"uri": uri, "className": target.name}
        lenses = [_lens(at, "▶ Fit", "torchbolt.fit", arg), _lens(at, "Validate", "torchbolt.validate", arg),
                  _lens(at, "Test", "torchbolt.test", arg), _lens(at, "Find LR", "torchbolt.lrFind", arg)]
    lenses.append(_lens(at, "TensorBoard", "torchbolt.openTensorBoard", {"uri": uri}))
    if running:  # last: the other lenses never move under the mouse while a run starts or ends
        lenses.append(_lens(at, "■ Stop", "torchbolt.stop", arg))
    return lenses


def register(server: TorchboltServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS, types.CodeLensOptions(resolve_provider=False))
    def code_lens(ls: TorchboltServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        doc = ls.document(uri)
        if doc is None:
            return []
        manager = ls.run_manager
        lenses: list[types.CodeLens] = []
        targets = manager.file_targets(uri, doc.text)
        for target in targets:
            lenses += target_lenses(uri, target, target.key in manager.active)
        if any(t.kind == "module" for t in targets):
            # a Fit click is likely: have torch ready (only once the user ran this folder in this session)
            manager.prewarm(manager.folder_for(ls.path_of(uri)))
        if not ls.context.inlay_hints and ls.context.settings.inlay_hints_enabled:
            for position, label in metric_labels(ls, doc, None):
                lenses.append(types.CodeLens(range=types.Range(position, position), command=types.Command(
                    title=label, command="")))
            for site in lr_sites(ls, doc):
                lenses.append(types.CodeLens(range=types.Range(site.range.end, site.range.end),
                                             command=types.Command(title=site.label, command="")))
        return lenses
