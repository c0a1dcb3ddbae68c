"""Run commands (`torchbolt.fit`, `.validate`, `.test`, `.stop`, `.openTensorBoard`, `.runs`), the same
actions as code actions, and the hover section for logged metric names.

Each command takes one object `{uri, position?, className?, runId?, overrides?}`. Refusals (untrusted
workspace, no data, a run already active) are shown with `window/showMessage` and returned as
`{"error": message}`; nothing of the workspace runs unless one of these commands is executed. In a folder
that is not trusted yet (clients without a trust UI), the first run command asks first (see `runs/trust.py`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from ..runs import format as fmt
from ..runs.manager import RunCancelled, RunCommandError

if TYPE_CHECKING:
    from ..server import TorchboltServer

log = logging.getLogger(__name__)

COMMANDS = ("torchbolt.fit", "torchbolt.validate", "torchbolt.test", "torchbolt.stop", "torchbolt.openTensorBoard",
            "torchbolt.runs")
#: Code action kinds offered for run actions (clients can filter on the `source.torchbolt` prefix).
ACTION_KINDS = {"fit": "source.torchbolt.fit", "validate": "source.torchbolt.validate",
                "test": "source.torchbolt.test", "stop": "source.torchbolt.stop",
                "openTensorBoard": "source.torchbolt.tensorboard"}


def _refuse(ls: TorchboltServer, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, RunCancelled):  # the user just said no: no message box about it
        return {"error": str(exc), "cancelled": True}
    ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=str(exc)))
    return {"error": str(exc)}


def _first(args: tuple[Any, ...]) -> Any:
    return args[0] if args else {}


def register(server: TorchboltServer) -> None:
    # Command handlers annotate `ls` as Any: pygls resolves their annotations at call time, and the server
    # class is only imported for type checking here.
    manager = server.run_manager
    server.shutdown_hooks.append(lambda ls: manager.shutdown())
    server.hover_contributors.append(metric_hover)
    # Run failures and run actions are merged into the diagnostics / code actions features' answers.
    server.diagnostic_providers.append(lambda uri: manager.diagnostics_for_path(server.path_of(uri)))
    server.code_action_providers.append(run_code_actions)
    manager.diagnostics_listeners.append(
        lambda paths: server.provider_diagnostics_changed({server.uri_of(p) for p in paths}))

    def make_run(fn: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def run_command(ls: Any, *args: Any) -> dict[str, Any]:
            try:
                return await manager.start(fn, _first(args))
            except RunCommandError as exc:
                return _refuse(ls, exc)

        return run_command

    for fn in ("fit", "validate", "test"):
        server.command(f"torchbolt.{fn}")(make_run(fn))

    @server.command("torchbolt.stop")
    def stop(ls: Any, *args: Any) -> dict[str, Any]:
        return manager.stop(_first(args))

    @server.command("torchbolt.openTensorBoard")
    async def open_tensorboard(ls: Any, *args: Any) -> dict[str, Any]:
        try:
            return await manager.open_tensorboard(_first(args))
        except RunCommandError as exc:
            return _refuse(ls, exc)

    @server.command("torchbolt.runs")
    def runs(ls: Any, *args: Any) -> dict[str, Any]:
        return manager.list_runs(_first(args))


def run_code_actions(ls: TorchboltServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """Fit / Validate / Test / Stop / TensorBoard for the run target enclosing the range (the code-actions
    feature merges these into its answer)."""
    only = [str(getattr(k, "value", k)) for k in (params.context.only or ())]
    if only and not any(k.startswith("source") for k in only):
        return []
    manager = ls.run_manager
    try:
        targets = manager.file_targets(params.text_document.uri)
    except Exception:
        return []
    line = params.range.start.line
    above = [t for t in targets if t.line <= line and t.kind != "datamodule"]
    if not above:
        return []
    target = max(above, key=lambda t: t.line)
    arg = {"uri": params.text_document.uri, "className": target.name} if target.kind != "script" else \
        {"uri": params.text_document.uri, "position": {"line": target.line, "character": target.col}}
    actions = []
    fns = ("fit", "validate", "test") if target.kind != "script" else (target.fn or "fit",)
    for fn in fns:
        title = f"{fn.capitalize()} {target.name}" if target.kind != "script" else f"Run {os.path.basename(target.path)}"
        actions.append(types.CodeAction(title=title, kind=ACTION_KINDS[fn],
                                        command=types.Command(title=title, command=f"torchbolt.{fn}", arguments=[arg])))
    if target.key in manager.active:
        actions.append(types.CodeAction(title=f"Stop {target.name}", kind=ACTION_KINDS["stop"],
                                        command=types.Command(title="Stop", command="torchbolt.stop", arguments=[arg])))
    actions.append(types.CodeAction(title="Open TensorBoard", kind=ACTION_KINDS["openTensorBoard"],
                                    command=types.Command(title="TensorBoard", command="torchbolt.openTensorBoard",
                                                          arguments=[{"uri": params.text_document.uri}])))
    if only:
        actions = [a for a in actions if any(str(a.kind).startswith(k) for k in only)]
    return actions


def metric_hover_markdown(name: str, rec: Any, folder: str, markdown: bool = True) -> str:
    """The hover section for a metric: values per epoch, the run, the best checkpoint."""
    rows = rec.per_epoch(name)
    mode = rec.mode(name)
    where = f" on {rec.hardware}" if rec.hardware else ""
    lines = [f"**{name}** in run `{rec.run_id}` ({rec.fn} {rec.label}, {rec.status}){where}" if markdown
             else f"{name} in run {rec.run_id} ({rec.fn} {rec.label}, {rec.status}){where}"]
    if rows:
        best = fmt.best([v for _, v in rows], mode)
        if markdown:
            lines += ["", "| epoch | value |", "|---:|---:|"]
            lines += [f"| {e} | {fmt.format_value(v)}{' ★' if v == best else ''} |" for e, v in rows[-20:]]
        else:
            lines += [f"  epoch {e}: {fmt.format_value(v)}" for e, v in rows[-20:]]
    label = rec.hint(name)
    if label:
        lines += ["", label]
    if rec.best_model_path:
        shown = os.path.relpath(rec.best_model_path, folder) if folder else rec.best_model_path
        score = (f" ({rec.monitor} {fmt.format_value(rec.best_model_score)})"
                 if rec.monitor and rec.best_model_score is not None else "")
        lines += ["", f"best checkpoint: `{shown}`{score}" if markdown else f"best checkpoint: {shown}{score}"]
    return "\n".join(lines)


def metric_hover(ls: TorchboltServer, target: Any) -> str | None:
    """Hover contributor: the run history of the metric name under the cursor, if any run reported it."""
    if getattr(target, "kind", None) != "metric" or not getattr(target, "name", None):
        return None
    path = ls.path_of(target.uri)
    manager = ls.run_manager
    from ..runs.anchors import candidate_names

    for candidate in candidate_names(target.name):
        rec = manager.metric_record(path, candidate)
        if rec is not None:
            markdown = bool(getattr(ls.context, "hover_markdown", True))
            return metric_hover_markdown(candidate, rec, manager.folder_for(path), markdown)
    return None
