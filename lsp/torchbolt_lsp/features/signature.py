"""Signature help for `Trainer(`, `self.log(` / `self.log_dict(`, the built-in callbacks and loggers, with
the active parameter tracked by keyword (or by position before any keyword)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types
from torchbolt import catalog

from .common import args_for, situation, spec_doc

if TYPE_CHECKING:
    from ..server import TorchboltServer


def _param_label(arg: catalog.Arg) -> str:
    return f"{arg.name}: {arg.annotation}" + ("" if arg.required else f" = {arg.default_text()}")


def signature_help(ls: TorchboltServer, uri: str, position: types.Position) -> types.SignatureHelp | None:
    """Signature of the known call around the cursor, or None."""
    sit = situation(ls, uri, position)
    if sit is None or sit.ctx.call is None or sit.callee is None or sit.ctx.in_comment:
        return None
    args = args_for(sit.callee)
    if not args and sit.callee != "LambdaCallback":
        return None
    call = sit.ctx.call
    name = "self." + sit.callee if sit.callee in ("log", "log_dict") else sit.callee
    label = name + "("
    params = []
    for arg in args:
        text = _param_label(arg)
        start = len(label)
        label += text
        doc = arg.doc + ("" if arg.required else f" Default: {arg.default_text()}.")
        if arg.choices:
            doc += " Values: " + ", ".join(repr(c) for c in arg.choices) + "."
        params.append(
            types.ParameterInformation(
                label=(start, start + len(text)),
                documentation=(
                    types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc)
                    if ls.context.signature_markdown
                    else doc
                ),
            )
        )
        label += ", "
    label = label.rstrip(", ") + ")"
    active: int | None = None
    names = [a.name for a in args]
    if call.keyword in names:
        active = names.index(call.keyword)
    elif call.keyword is None:
        typed = call.value_text.strip()
        if typed and typed.isidentifier():
            active = next(
                (i for i, n in enumerate(names) if n.startswith(typed) and n not in call.given), None
            )
        elif (
            call.positional_before == call.active_index
            and call.active_index < len(args)
            and sit.callee != "Trainer"
        ):
            active = call.active_index
    info = types.SignatureInformation(
        label=label,
        parameters=params,
        documentation=(
            types.MarkupContent(kind=types.MarkupKind.Markdown, value=spec_doc(sit.callee))
            if ls.context.signature_markdown
            else spec_doc(sit.callee)
        ),
        active_parameter=active if ls.context.active_parameter_support else None,
    )
    return types.SignatureHelp(signatures=[info], active_signature=0, active_parameter=active)


def register(server: TorchboltServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_SIGNATURE_HELP,
        types.SignatureHelpOptions(trigger_characters=["(", ","], retrigger_characters=[",", "="]),
    )
    def on_signature(ls: TorchboltServer, params: types.SignatureHelpParams) -> types.SignatureHelp | None:
        return signature_help(ls, params.text_document.uri, params.position)
