"""Hover: hooks (signature, when they run, entry points, 1.x replacements), Trainer / callback / `self.log`
arguments and their values, logged metric names, and LightningModule members.

Extension point: `server.hover_contributors` holds functions `fn(ls, HoverTarget) -> str | None`; each
non-empty result is appended to the hover as its own section (L3 adds the latest run's metric values).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from torchbolt import catalog

from ..analysis.names import resolve
from . import docs
from .common import Situation, args_for, situation, spec_doc

if TYPE_CHECKING:
    from ..server import TorchboltServer

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?")
_DOTTED_END = re.compile(r"([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)$")
_DEF_NAME = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)")
_CLASS_NAME = re.compile(r"^\s*class\s+([A-Za-z_]\w*)")


@dataclass(frozen=True)
class HoverTarget:
    """What the cursor is on, handed to hover contributors."""

    kind: str  # "hook" | "argument" | "value" | "metric" | "member" | "callee" | "class"
    name: str  # hook / argument / metric / member name
    uri: str
    range: types.Range
    owner: str | None = None  # callee (Trainer, ModelCheckpoint, log) or class kind
    value: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


HoverContributor = Callable[["TorchboltServer", HoverTarget], "str | None"]


def _word_at(line: str, col: int) -> tuple[str, int, int] | None:
    """The number or identifier under (or just before) column `col`."""
    for pattern in (_NUMBER, _WORD):
        for m in pattern.finditer(line):
            if m.start() <= col <= m.end():
                return m.group(0), m.start(), m.end()
    return None


def _string_at(sit: Situation) -> tuple[str, int, int] | None:
    """The whole string literal around the cursor: (content, content start, content end) offsets."""
    s = sit.ctx.string
    if s is None:
        return None
    text = sit.doc.text
    end = text.find(s.quote, sit.ctx.offset)
    line_end = min(
        (i for i in (text.find("\n", sit.ctx.offset), text.find("\r", sit.ctx.offset)) if i >= 0),
        default=len(text),
    )
    if end < 0 or (len(s.quote) == 1 and end > line_end):
        end = line_end
    return text[s.content_start : end], s.content_start, end


def find_target(ls: TorchboltServer, uri: str, position: types.Position) -> tuple[HoverTarget, str] | None:
    """The hover target under the cursor and its base markdown/plain text, or None."""
    sit = situation(ls, uri, position)
    if sit is None or sit.ctx.in_comment:
        return None
    md = ls.context.hover_markdown
    ctx, doc = sit.ctx, sit.doc
    line_text = doc.line_text(ctx.line)
    col = len(ctx.line_prefix)

    # a string: a metric name (monitor value, self.log name, log_dict key) or an argument value
    literal = _string_at(sit)
    if literal is not None:
        content, start, end = literal
        rng = doc.range_of(start, end)
        metric = _metric_hover(ls, sit, content, md)
        if metric is not None:
            return HoverTarget("metric", content, uri, rng, sit.callee), metric
        if ctx.call is not None and ctx.call.in_value and ctx.call.keyword and sit.callee:
            arg = next((a for a in args_for(sit.callee) if a.name == ctx.call.keyword), None)
            if arg is not None:
                return (
                    HoverTarget("value", arg.name, uri, rng, sit.callee, content),
                    docs.value_doc(arg, content, sit.callee, md),
                )
        return None

    word = _word_at(line_text, col)
    if word is None:
        return None
    name, wstart, wend = word
    line_start = ctx.offset - col
    rng = doc.range_of(line_start + wstart, line_start + wend)
    rest = line_text[wend:]

    # a class definition's name: no text of its own; contributors add what they know (its runs)
    m = _CLASS_NAME.match(line_text)
    if m and m.start(1) == wstart:
        return HoverTarget("class", name, uri, rng), ""

    # a hook definition
    m = _DEF_NAME.match(line_text)
    if m and m.start(1) == wstart and sit.kind is not None:
        hook = catalog.HOOKS_BY_OWNER[sit.kind].get(name)
        if hook is not None:
            return HoverTarget("hook", name, uri, rng, sit.kind), docs.hook_doc(hook, md)
        removed = catalog.REMOVED_HOOKS.get(name)
        if removed is not None:
            return (
                HoverTarget("hook", name, uri, rng, sit.kind, extra={"removed": True}),
                docs.removed_doc(removed, "this hook was", md),
            )
        return None

    # a keyword argument name in a known call
    if ctx.call is not None and sit.callee is not None and re.match(r"\s*=(?!=)", rest):
        arg = next((a for a in args_for(sit.callee) if a.name == name), None)
        if arg is not None:
            return HoverTarget("argument", name, uri, rng, sit.callee), docs.arg_doc(arg, sit.callee, md)
        if sit.callee == "Trainer" and name in catalog.REMOVED_TRAINER_ARGS:
            return (
                HoverTarget("argument", name, uri, rng, sit.callee, extra={"removed": True}),
                docs.removed_doc(catalog.REMOVED_TRAINER_ARGS[name], "this Trainer argument was", md),
            )
        return None

    # a non-string value of a keyword argument (True, 16, None, -1)
    if ctx.call is not None and ctx.call.in_value and ctx.call.keyword and sit.callee:
        arg = next((a for a in args_for(sit.callee) if a.name == ctx.call.keyword), None)
        if arg is not None:
            try:
                value = ast.literal_eval(name)
            except (ValueError, SyntaxError):
                value = name
            return (
                HoverTarget("value", arg.name, uri, rng, sit.callee, value),
                docs.value_doc(arg, value, sit.callee, md),
            )

    # the name of a known callee: Trainer, a callback, a logger
    if re.match(r"\s*\(", rest):
        dotted = _DOTTED_END.search(line_text[:wend])
        callee = resolve(re.sub(r"\s+", "", dotted.group(1)), sit.bindings) if dotted else None
        if callee is not None and (args_for(callee) or callee in catalog.CALLBACKS_BY_NAME):
            return HoverTarget("callee", callee, uri, rng, callee), docs.callee_doc(
                callee, args_for(callee), spec_doc(callee), md
            )

    # self.<member> in a LightningModule
    before = line_text[:wstart]
    if re.search(r"\bself\s*\.\s*$", before) and sit.kind == "module":
        member = next((mm for mm in catalog.MODULE_MEMBERS if mm.name == name), None)
        if member is not None:
            return HoverTarget("member", name, uri, rng, "module"), docs.member_doc(member, md)
    return None


def _metric_context(sit: Situation) -> bool:
    """The cursor's string is a metric name position: monitor value, self.log name, log_dict key."""
    ctx = sit.ctx
    if ctx.dict_key == "monitor":
        return True
    call = ctx.call
    if call is not None and sit.callee is not None:
        if call.keyword == "monitor" or (
            call.keyword is None
            and sit.callee in catalog.CALLBACKS_BY_NAME
            and _positional_name(sit) == "monitor"
        ):
            return True
        if sit.callee == "log" and (
            call.keyword == "name" or (call.keyword is None and call.active_index == 0)
        ):
            return True
    return False


def _positional_name(sit: Situation) -> str | None:
    call = sit.ctx.call
    args = args_for(sit.callee)
    if call is None or call.positional_before != call.active_index or call.active_index >= len(args):
        return None
    return str(args[call.active_index].name)


def _metric_hover(ls: TorchboltServer, sit: Situation, name: str, md: bool) -> str | None:
    ls.ensure_all_indexed()
    defs = ls.index.metric_definitions(name)
    if not defs and not _metric_context(sit):
        return None
    title = f"**metric** `{name}`" if md else f"metric {name}"
    lines = [title, ""]
    if not defs:
        lines.append("Not logged with self.log / self.log_dict anywhere in the workspace.")
        if "/dataloader_idx_" in name:
            lines.append(
                "Names with /dataloader_idx_N are produced at run time for several eval dataloaders."
            )
        return "\n".join(lines)
    for path, metric in defs[:8]:
        where = f"{metric.class_name}.{metric.hook}" if metric.class_name else str(metric.hook)
        levels = ", ".join(
            f"{k}={v}"
            for k, v in (("on_step", metric.on_step), ("on_epoch", metric.on_epoch))
            if v is not None
        )
        produced = ", ".join(metric.produced)
        bullet = "- " if md else "* "
        lines.append(
            f"{bullet}self.{metric.call}({metric.name!r}) in {where} "
            f"({path.rsplit('/', 1)[-1]}:{metric.span.line + 1})"
            + (f"; {levels}" if levels else "")
            + f"; produces {produced}"
        )
        if metric.note:
            lines.append(f"  {metric.note}")
    if name in defs[0][1].produced and name != defs[0][1].name:
        lines.append("")
        lines.append(
            f"{name!r} is the forked {'step' if name.endswith('_step') else 'epoch'} value of "
            f"{defs[0][1].name!r} (on_step and on_epoch are both true)."
        )
    return "\n".join(lines)


def hover(ls: TorchboltServer, uri: str, position: types.Position) -> types.Hover | None:
    """The hover at a position, with contributors' sections appended."""
    found = find_target(ls, uri, position)
    if found is None:
        return None
    target, text = found
    sections = [text] if text else []
    for contributor in list(ls.hover_contributors):
        try:
            extra = contributor(ls, target)
        except Exception:
            import logging

            logging.getLogger(__name__).exception("hover contributor %r failed", contributor)
            continue
        if extra:
            sections.append(extra)
    if not sections:  # a target with nothing to say (a class no run knows)
        return None
    sep = "\n\n---\n\n" if ls.context.hover_markdown else "\n\n"
    return types.Hover(
        contents=types.MarkupContent(kind=ls.context.markup_kind, value=sep.join(sections)),
        range=target.range,
    )


def register(server: TorchboltServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: TorchboltServer, params: types.HoverParams) -> types.Hover | None:
        return hover(ls, params.text_document.uri, params.position)
