"""Completion: hooks to override, Trainer / callback / `self.log` arguments and their values, metric
names for `monitor=`, and the LightningModule members after `self.`.

Every list holds only torchbolt's items and is complete (`isIncomplete=False`), so it sits next to the
Python server's own list. Large documentation is filled in lazily by `completionItem/resolve`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from torchbolt import catalog

from . import docs
from .common import Situation, args_for, argument_owner, class_methods_in_text, situation

if TYPE_CHECKING:
    from ..server import TorchboltServer

TRIGGER_CHARACTERS = ["(", ",", "=", '"', "'", ".", " "]
_PLACEHOLDER = re.compile(r"\$\{\d+:([^}]*)\}|\$\{\d+\}|\$\d+")
_MEMBER_KIND = {
    "method": types.CompletionItemKind.Method,
    "property": types.CompletionItemKind.Property,
    "attribute": types.CompletionItemKind.Field,
}


def plain(snippet: str) -> str:
    """A snippet with its placeholders replaced by their default text (for clients without snippets)."""
    return _PLACEHOLDER.sub(lambda m: m.group(1) or "", snippet)


def _range(sit: Situation, start: int, end: int | None = None) -> types.Range:
    return sit.doc.range_of(start, sit.ctx.offset if end is None else end)


def _markup(ls: TorchboltServer, text: str) -> types.MarkupContent | str:
    if ls.context.completion_markdown:
        return types.MarkupContent(kind=types.MarkupKind.Markdown, value=text)
    return text


def _lazy_docs(ls: TorchboltServer) -> bool:
    return "documentation" in ls.context.resolve_properties


# ------------------------------------------------------------------------------------------- hooks
def hook_items(ls: TorchboltServer, sit: Situation) -> list[types.CompletionItem]:
    """Hooks the enclosing Lightning class can override and has not defined yet."""
    ctx = sit.ctx
    if sit.kind is None or ctx.klass is None:
        return []
    lines = sit.doc.lines
    defined = class_methods_in_text(lines, ctx.klass.line, ctx.klass.indent)
    current = lines[ctx.line] if ctx.line < len(lines) else ""
    m = re.match(r"\s*(?:async\s+)?def\s+(\w+)\s*\(", current)
    if m:
        defined.discard(m.group(1))  # the def being typed (a completed name with its parentheses)
    typed_def = ctx.def_name is not None
    indent_unit = "\t" if ctx.line_prefix.startswith("\t") else "    "
    # Snippet clients (VS Code, Neovim's vim.snippet) prefix every inserted line after the first with the
    # def line's indentation themselves: the body carries only its indentation relative to the def. A
    # plain-text insert is taken as is, so it carries the absolute indentation.
    relative = ls.context.snippets
    body_indent = indent_unit if relative else ctx.line_prefix[: ctx.indent] + indent_unit
    mode = types.InsertTextMode.AdjustIndentation if relative else types.InsertTextMode.AsIs
    insert_mode = mode if int(mode) in ls.context.insert_text_modes else None
    hooks = sorted(catalog.HOOKS_BY_OWNER[sit.kind].values(), key=lambda h: (h.rank, h.name))
    items = []
    for hook in hooks:
        if hook.name in defined:
            continue
        signature = hook.signature()[len("def ") :]
        body = "\n".join(body_indent + line for line in hook.body.split("\n"))
        snippet = f"{signature}:\n{body}$0" if "$" in hook.body else f"{signature}:\n{body}"
        if not typed_def:
            snippet = "def " + snippet
        start = ctx.word_start
        text = snippet if ls.context.snippets else plain(snippet)
        item = types.CompletionItem(
            label=hook.name,
            kind=types.CompletionItemKind.Method,
            detail=hook.signature(),
            sort_text=f"0{hook.rank:04d}_{hook.name}",
            filter_text=hook.name,
            insert_text_format=(
                types.InsertTextFormat.Snippet if ls.context.snippets else types.InsertTextFormat.PlainText
            ),
            text_edit=types.TextEdit(range=_range(sit, start), new_text=text),
            insert_text_mode=insert_mode,
            data={"torchbolt": "hook", "owner": sit.kind, "name": hook.name},
        )
        if ls.context.label_details:
            item.label_details = types.CompletionItemLabelDetails(description=", ".join(hook.entry_points))
        if not _lazy_docs(ls):
            item.documentation = _markup(ls, docs.hook_doc(hook, ls.context.completion_markdown))
        items.append(item)
    return items


# ----------------------------------------------------------------------------------- call arguments
def keyword_items(ls: TorchboltServer, sit: Situation) -> list[types.CompletionItem]:
    """Keyword arguments of the call at the cursor that are not given yet."""
    call = sit.ctx.call
    assert call is not None and sit.callee is not None
    args = args_for(sit.callee)
    given = set(call.given)
    # positional arguments already fill the leading parameters
    given.update(a.name for a in args[: call.positional_before])
    items = []
    for order, arg in enumerate(args):
        if arg.name in given or (sit.callee in ("log", "log_dict") and arg.required):
            continue
        detail = f"{arg.annotation} = {arg.default_text()}"
        items.append(
            types.CompletionItem(
                label=f"{arg.name}=",
                kind=types.CompletionItemKind.Variable,
                detail=detail,
                documentation=_markup(ls, docs.arg_doc(arg, sit.callee, ls.context.completion_markdown)),
                sort_text=f"0{order:04d}_{arg.name}",
                filter_text=arg.name,
                insert_text_format=types.InsertTextFormat.PlainText,
                text_edit=types.TextEdit(range=_range(sit, sit.ctx.word_start), new_text=f"{arg.name}="),
            )
        )
    return items


def _value_candidates(arg: catalog.Arg) -> list[Any]:
    values: list[Any] = list(arg.choices)
    if "bool" in arg.types and not any(isinstance(v, bool) for v in values):
        values += [True, False]
    if "none" in arg.types:
        values.append(None)
    return values


def value_items(ls: TorchboltServer, sit: Situation, arg: catalog.Arg) -> list[types.CompletionItem]:
    """Allowed values of the argument under the cursor, inside or outside quotes."""
    ctx = sit.ctx
    in_string = ctx.string is not None
    values = _value_candidates(arg)
    if in_string:
        values = [v for v in values if isinstance(v, str)]
        start = ctx.string.content_start if ctx.string else ctx.offset
    else:
        call = ctx.call
        value_text = call.value_text if call else ""
        start = ctx.offset - len(value_text.lstrip()) if value_text.strip() else ctx.offset
    items = []
    for order, value in enumerate(values):
        text = (
            value if in_string else repr(value).replace("'", '"') if isinstance(value, str) else repr(value)
        )
        label = str(value) if in_string else text
        items.append(
            types.CompletionItem(
                label=label,
                kind=types.CompletionItemKind.EnumMember
                if isinstance(value, str)
                else types.CompletionItemKind.Value,
                detail=f"{arg.name}: {arg.annotation}",
                documentation=_markup(ls, arg.doc),
                sort_text=f"0{order:04d}",
                filter_text=label,
                insert_text_format=types.InsertTextFormat.PlainText,
                text_edit=types.TextEdit(range=_range(sit, start), new_text=str(text)),
            )
        )
    return items


def metric_items(ls: TorchboltServer, sit: Situation) -> list[types.CompletionItem]:
    """Metric names logged in the workspace, with the `_step`/`_epoch` variants Lightning produces."""
    ls.ensure_all_indexed()  # edits in other open documents count at once, not after the debounce
    ctx = sit.ctx
    in_string = ctx.string is not None
    if in_string and ctx.string is not None:
        start = ctx.string.content_start
    else:
        typed = (ctx.call.value_text if ctx.call else ctx.dict_value_text).strip()
        start = ctx.offset - len(typed)
    items = []
    for name, sources in sorted(ls.index.metric_names().items()):
        _, metric = sources[0]
        where = sorted({f"{m.class_name}.{m.hook}" if m.class_name else str(m.hook) for _, m in sources})
        level = []
        if metric.on_step:
            level.append("on_step")
        if metric.on_epoch:
            level.append("on_epoch")
        kind = (
            "forked step value"
            if name.endswith("_step") and name != metric.name
            else "forked epoch value"
            if name.endswith("_epoch") and name != metric.name
            else "logged value"
        )
        doc = f"{kind} of self.log({metric.name!r}) in {', '.join(where)}"
        if level:
            doc += f" ({' + '.join(level)})"
        if metric.note:
            doc += f". {metric.note}"
        text = name if in_string else f'"{name}"'
        items.append(
            types.CompletionItem(
                label=name,
                kind=types.CompletionItemKind.Constant,
                detail=f"metric · {', '.join(where)}",
                documentation=_markup(ls, doc),
                sort_text=f"0{0 if name == metric.name else 1}{name}",
                filter_text=name,
                insert_text_format=types.InsertTextFormat.PlainText,
                text_edit=types.TextEdit(range=_range(sit, start), new_text=text),
            )
        )
    return items


def member_items(ls: TorchboltServer, sit: Situation) -> list[types.CompletionItem]:
    """LightningModule members after `self.` (or `pl_module.` in a callback)."""
    assert sit.ctx.member is not None
    _, partial = sit.ctx.member
    rng = _range(sit, sit.ctx.offset - len(partial))
    items = []
    for order, member in enumerate(catalog.MODULE_MEMBERS):
        is_method = member.kind == "method"
        snippet = f"{member.name}($0)" if is_method and ls.context.snippets else member.name
        items.append(
            types.CompletionItem(
                label=member.name,
                kind=_MEMBER_KIND.get(member.kind, types.CompletionItemKind.Property),
                detail=member.signature,
                documentation=_markup(ls, docs.member_doc(member, ls.context.completion_markdown)),
                sort_text=f"0{order:04d}",
                filter_text=member.name,
                insert_text_format=(
                    types.InsertTextFormat.Snippet
                    if is_method and ls.context.snippets
                    else types.InsertTextFormat.PlainText
                ),
                text_edit=types.TextEdit(range=rng, new_text=snippet),
            )
        )
    return items


# ------------------------------------------------------------------------------------------- router
def complete(ls: TorchboltServer, uri: str, position: types.Position) -> list[types.CompletionItem]:
    """All torchbolt completion items at a position (empty when nothing applies)."""
    sit = situation(ls, uri, position)
    if sit is None or sit.ctx.in_comment:
        return []
    ctx = sit.ctx
    if ctx.dict_key == "monitor":
        return metric_items(ls, sit)
    if ctx.def_name is not None or ctx.member_line:
        return hook_items(ls, sit)
    if ctx.member is not None and ctx.string is None:
        receiver = ctx.member[0]
        if (receiver == "self" and sit.kind == "module") or (
            receiver == "pl_module" and sit.kind == "callback"
        ):
            return member_items(ls, sit)
        return []
    call = ctx.call
    if call is not None and sit.callee is not None:
        name, arg = argument_owner(sit)
        if call.in_value or ctx.string is not None:
            if name == "monitor" and sit.callee in catalog.CALLBACKS_BY_NAME:
                return metric_items(ls, sit)
            return value_items(ls, sit, arg) if arg is not None else []
        # typing a keyword name: the argument so far is a bare identifier (or nothing)
        if re.fullmatch(r"[A-Za-z_]\w*|", call.value_text.strip()):
            return keyword_items(ls, sit)
    return []


def resolve_item(ls: TorchboltServer, item: types.CompletionItem) -> types.CompletionItem:
    """Fill in the documentation of a hook item (kept out of the first answer to keep it small)."""
    data = item.data
    if isinstance(data, dict):
        kind, owner, name = data.get("torchbolt"), data.get("owner"), data.get("name")
    else:
        kind, owner, name = (
            getattr(data, "torchbolt", None),
            getattr(data, "owner", None),
            getattr(data, "name", None),
        )
    if kind == "hook" and owner in catalog.HOOKS_BY_OWNER:
        hook = catalog.HOOKS_BY_OWNER[owner].get(str(name))
        if hook is not None:
            item.documentation = _markup(ls, docs.hook_doc(hook, ls.context.completion_markdown))
    return item


def _on_cursor_line(
    items: list[types.CompletionItem], position: types.Position
) -> list[types.CompletionItem]:
    """LSP requires an item's edit range to be single-line and to contain the cursor: enforce it."""
    for item in items:
        edit = item.text_edit
        if isinstance(edit, types.TextEdit):
            start, end = edit.range.start, edit.range.end
            if start.line != position.line or start.character > position.character:
                start = types.Position(
                    line=position.line, character=0 if start.line < position.line else position.character
                )
            edit.range = types.Range(start=start, end=position if end != position else end)
    return items


def register(server: TorchboltServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=TRIGGER_CHARACTERS, resolve_provider=True),
    )
    def on_completion(ls: TorchboltServer, params: types.CompletionParams) -> types.CompletionList:
        items = complete(ls, params.text_document.uri, params.position)
        return types.CompletionList(is_incomplete=False, items=_on_cursor_line(items, params.position))

    @server.feature(types.COMPLETION_ITEM_RESOLVE)
    def on_resolve(ls: TorchboltServer, item: types.CompletionItem) -> types.CompletionItem:
        return resolve_item(ls, item)
