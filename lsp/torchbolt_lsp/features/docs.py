"""Markdown / plain-text renderings of catalog records, shared by completion, hover and signature help."""

from __future__ import annotations

from torchbolt import catalog

_ENTRY = {"fit": "fit", "validate": "validate", "test": "test", "predict": "predict"}


def code(text: str, markdown: bool) -> str:
    return f"```python\n{text}\n```" if markdown else text


def log_rule_text(hook: str) -> str:
    """Where `self.log` stands in a hook, in words."""
    if hook in catalog.LOG_FORBIDDEN:
        return "self.log is not allowed here"
    rule = catalog.log_rule(hook)
    if rule is None:
        return ""
    return (
        f"self.log allowed (defaults on_step={rule.default_on_step}, on_epoch={rule.default_on_epoch}; "
        f"allowed on_step {list(rule.allowed_on_step)}, on_epoch {list(rule.allowed_on_epoch)})"
    )


def hook_doc(hook: catalog.Hook, markdown: bool) -> str:
    """Signature, when it runs, entry points and logging rule of a hook."""
    owner = {"module": "LightningModule", "datamodule": "LightningDataModule", "callback": "Callback"}[
        hook.owner
    ]
    entry = ", ".join(hook.entry_points) if hook.entry_points else "called by your own code"
    lines = [
        code(hook.signature(), markdown),
        "",
        f"{owner} hook. {hook.doc}",
        "",
        f"{'**Entry points:**' if markdown else 'Entry points:'} {entry}",
    ]
    if hook.only_if_overridden:
        lines.append("Called only when overridden.")
    rule = log_rule_text(hook.name)
    if rule:
        lines.append(rule[0].upper() + rule[1:] + ".")
    return "\n".join(lines)


def removed_doc(removed: catalog.Removed, what: str, markdown: bool) -> str:
    name = f"`{removed.name}`" if markdown else removed.name
    return f"{name}: {what} removed in Lightning {removed.removed_in}. Instead: {removed.replacement}."


def arg_doc(arg: catalog.Arg, owner: str, markdown: bool) -> str:
    """Type, default, allowed values and constraint of an argument."""
    b = (lambda s: f"**{s}**") if markdown else (lambda s: s)
    lines = [code(f"{owner}({arg.name}: {arg.annotation} = {arg.default_text()})", markdown), "", arg.doc, ""]
    lines.append(
        f"{b('Default:')} {arg.default_text()}"
        + (f" (means {arg.effective_default})" if arg.effective_default else "")
    )
    if arg.choices:
        label = "Suggested values:" if arg.choices_open else "Allowed values:"
        lines.append(f"{b(label)} " + ", ".join(repr(c) for c in arg.choices))
    if arg.constraint:
        lines.append(f"{b('Constraint:')} {arg.constraint}")
    return "\n".join(lines)


def value_doc(arg: catalog.Arg, value: object, owner: str, markdown: bool) -> str:
    """Hover text for an argument's value (`precision="16-mixed"`)."""
    lines = [arg_doc(arg, owner, markdown)]
    if arg.name == "precision" and value in catalog.PRECISION_REWRITES:
        lines.append(f"\n{value!r} is an older spelling; write {catalog.PRECISION_REWRITES[value]!r}.")
    elif arg.name == "strategy" and isinstance(value, str) and value in catalog.REMOVED_STRATEGIES:
        lines.append(f"\nStrategy {value!r} was removed in 2.0; use {catalog.REMOVED_STRATEGIES[value]!r}.")
    elif arg.choices and not arg.choices_open and value not in arg.choices:
        lines.append(f"\n{value!r} is not one of the allowed values.")
    return "\n".join(lines)


def callee_doc(name: str, args: tuple[catalog.Arg, ...], doc: str, markdown: bool) -> str:
    """Constructor signature (one argument per line) and description of Trainer / a callback / a logger."""
    params = ",\n".join(
        f"    {a.name}: {a.annotation}" + ("" if a.required else f" = {a.default_text()}") for a in args
    )
    signature = f"{name}(\n{params},\n)" if args else f"{name}(**kwargs)"
    return "\n".join([code(signature, markdown), "", doc])


def member_doc(member: catalog.Member, markdown: bool) -> str:
    return "\n".join([code(member.signature, markdown), "", member.doc])
