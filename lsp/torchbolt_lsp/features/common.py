"""Shared glue for the interactive features: from (uri, position) to a resolved cursor situation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsprotocol import types
from torchbolt import catalog

from ..analysis.cursor import CursorContext, cursor_context, top_level_bindings
from ..analysis.names import KNOWN_NAMES, is_lightning_module_path, qualify, resolve
from ..document import Document

if TYPE_CHECKING:
    from ..server import TorchboltServer

#: The argument tables a call can complete against, by canonical callee.
_LOGGERS = {spec.name: spec for spec in (*catalog.LOGGERS, *catalog.PROFILER_CLASSES)}  # loggers and profilers


def args_for(callee: str | None) -> tuple[catalog.Arg, ...]:
    """Catalog arguments of a canonical callee: Trainer, a callback, a logger, `log`, `log_dict`."""
    args: tuple[catalog.Arg, ...] = ()
    if callee == "Trainer":
        args = catalog.TRAINER_ARGS
    elif callee == "log":
        args = catalog.LOG_ARGS
    elif callee == "log_dict":
        args = catalog.LOG_DICT_ARGS
    elif callee is not None:
        spec = catalog.CALLBACKS_BY_NAME.get(callee) or _LOGGERS.get(callee)
        args = spec.args if spec else ()
    return args


def spec_doc(callee: str) -> str:
    """One-line description of a callee."""
    if callee == "Trainer":
        return "Runs fit / validate / test / predict for a LightningModule."
    if callee in ("log", "log_dict"):
        return str(next(m.doc for m in catalog.MODULE_MEMBERS if m.name == callee))
    spec = catalog.CALLBACKS_BY_NAME.get(callee) or _LOGGERS.get(callee)
    return str(spec.doc) if spec else ""


@dataclass
class Situation:
    """A cursor position resolved against imports, the enclosing class and the workspace index."""

    doc: Document
    path: str
    ctx: CursorContext
    bindings: dict[str, str]
    kind: str | None  # Lightning kind of the enclosing class: module | datamodule | callback
    callee: str | None  # canonical callee of the call at the cursor (Trainer, ModelCheckpoint, log, ...)


def bindings_for(ls: TorchboltServer, doc: Document, path: str) -> dict[str, str]:
    """Import bindings of a document: tree-sitter's current view over the index's last parse."""
    facts = ls.index.get(path)
    out = dict(facts.bindings) if facts else {}
    package = facts.package if facts else ""
    out.update(doc.memo("bindings:" + package, lambda: top_level_bindings(doc.tree, doc.data, package)))
    return out


def canonical_callee(
    callee: str, bindings: dict[str, str], ctx: CursorContext, kind: str | None
) -> str | None:
    """`pl.Trainer` -> Trainer, `self.log` -> log (in a LightningModule), `pl_module.log` -> log, ..."""
    receiver, _, attr = callee.rpartition(".")
    if attr in ("log", "log_dict") and (receiver == "self" and kind == "module" or receiver == "pl_module"):
        return attr
    name = resolve(callee, bindings)
    if name is not None:
        return name
    # an unimported bare known name (e.g. star-imported from a helper module) in a Lightning file
    if "." not in callee and callee in KNOWN_NAMES and callee not in bindings:
        if any(is_lightning_module_path(v) for v in bindings.values()):
            return callee
    return None


def situation(ls: TorchboltServer, uri: str, position: types.Position) -> Situation | None:
    """Resolve the cursor; None for unknown documents."""
    doc = ls.document(uri)
    if doc is None:
        return None
    path = ls.path_of(uri)
    offset = doc.offset_at(position.line, position.character)
    line = min(max(position.line, 0), doc.line_count() - 1)
    ctx = cursor_context(doc.text, doc.tree, offset, doc.lines, line)
    bindings = bindings_for(ls, doc, path)
    kind = None
    if ctx.klass is not None:
        bases = [(b, qualify(b, bindings)) for b in ctx.klass.bases]
        kind = ls.index.kind_of_bases(path, bases)
    callee = canonical_callee(ctx.call.callee, bindings, ctx, kind) if ctx.call else None
    return Situation(doc, path, ctx, bindings, kind, callee)


def class_methods_in_text(text_lines: list[str], class_line: int, class_indent: int) -> set[str]:
    """Names of methods defined in a class body, read from the current text (works on broken code)."""
    out: set[str] = set()
    body_indent: int | None = None
    for raw in text_lines[class_line + 1 :]:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        ind = len(raw) - len(raw.lstrip(" \t"))
        if ind <= class_indent:
            break
        if body_indent is None:
            body_indent = ind
        if ind == body_indent:
            m = re.match(r"(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(", stripped)
            if m:
                out.add(m.group(1))
    return out


def argument_owner(sit: Situation) -> tuple[str | None, catalog.Arg | None]:
    """The catalog argument under the cursor: by keyword, else by position."""
    call = sit.ctx.call
    if call is None or sit.callee is None:
        return None, None
    args = args_for(sit.callee)
    if call.keyword:
        return call.keyword, next((a for a in args if a.name == call.keyword), None)
    if (
        call.positional_before == call.active_index
        and call.active_index < len(args)
        and sit.callee != "Trainer"
    ):
        arg = args[call.active_index]
        return arg.name, arg
    return None, None
