"""Which quick fixes are safe: the policy that keeps `torchbolt check --fix` from changing what code does.

A fix is *safe* only when the rewrite keeps the meaning the code had (a 1.x spelling of the same
setting, a call the Trainer now makes itself). A guess (did-you-mean), a migration that restructures
code, or a rewrite whose meaning depends on a run-time value is *unsafe*: offered on request only
(`--unsafe-fixes`, or a code action titled "(unsafe)"), never in `--fix` or `source.fixAll`. Some
rewrites are not offered at all: ones that would break the call they fix, or edits inside a test that
asserts the error (`pytest.raises`).

`settle(ctx, findings)` applies the policy to a file's findings after the checkers ran;
`removed_keyword_fix` builds the value-aware rewrite of a removed Trainer keyword (`gpus=None` means
CPU, not `accelerator="gpu"`).
"""

from __future__ import annotations

import ast
import dataclasses
from typing import TYPE_CHECKING

from torchbolt.catalog import HOOKS_BY_OWNER

from .model import Finding, Fix

if TYPE_CHECKING:
    from torchbolt.catalog.schema import Removed

    from .engine import Context

#: Codes whose fixes are did-you-mean guesses: the intended name is likely, never certain.
GUESS_CODES = frozenset({"TB103", "TB404", "TB501", "TB505"})
#: Fix kinds that restructure code or invent behaviour (an optimizer, an attribute, manual optimization).
UNSAFE_KINDS = frozenset({"migrate_epoch_end", "add_configure_optimizers", "disable_automatic_optimization",
                          "to_manual_optimization"})
#: Removed strategies map to a *different* strategy (dp -> ddp): never the same run.
UNSAFE_CODES = frozenset({"TB504"})
#: Codes about a strategy/accelerator name, which a project may register itself.
_NAME_CODES = frozenset({"TB504", "TB505"})
#: Context managers and calls that assert an error: code inside them is wrong on purpose.
_RAISES = frozenset({"raises", "assertRaises", "assertRaisesRegex", "assertRaisesRegexp"})


def settle(ctx: Context, findings: list[Finding]) -> list[Finding]:
    """The findings with each fix marked safe/unsafe, and fixes that would change the code's meaning removed."""
    if not findings:
        return findings
    # both scans are whole-tree walks: only when the text can hold what they look for
    asserted = _asserting_ranges(ctx.tree) if any(f.fixes for f in findings) and (
        "raises" in ctx.source or "Raises" in ctx.source) else []
    registered = _registered_names(ctx) if "Registry" in ctx.source and any(
        f.code in _NAME_CODES for f in findings) else set()
    out: list[Finding] = []
    for finding in findings:
        if finding.code in _NAME_CODES and registered and _literal_at(ctx, finding) in registered:
            continue  # a strategy the project registers itself under an old name is valid
        if not finding.fixes:
            out.append(finding)
            continue
        if any(first <= finding.line <= last for first, last in asserted):
            out.append(dataclasses.replace(finding, fixes=()))  # the test wants this error: keep it
            continue
        fixes = []
        for fix in finding.fixes:
            if fix.kind == "rename_def" and not _rename_keeps_signature(ctx, fix):
                continue  # the renamed method would be called with other arguments (TypeError)
            unsafe = finding.code in GUESS_CODES or finding.code in UNSAFE_CODES or fix.kind in UNSAFE_KINDS
            fixes.append(dataclasses.replace(fix, safe=fix.safe and not unsafe))
        out.append(dataclasses.replace(finding, fixes=tuple(fixes)))
    return out


def _asserting_ranges(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of `with pytest.raises(...)` bodies and of `pytest.raises(E, func, *args)` calls."""
    out: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.With | ast.AsyncWith):
            if any(_is_raises(item.context_expr) for item in node.items) and node.body:
                out.append((node.body[0].lineno, node.end_lineno or node.body[-1].lineno))
        elif isinstance(node, ast.Call) and _is_raises(node) and len(node.args) > 1:
            out.append((node.lineno, node.end_lineno or node.lineno))
    return out


def _is_raises(expr: ast.expr) -> bool:
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in _RAISES


def _registered_names(ctx: Context) -> set[str]:
    """Names given to `XRegistry.register("name", ...)` in this file (custom strategies and accelerators)."""
    out: set[str] = set()
    for site in ctx.scan.calls:
        node = site.call
        if isinstance(node.func, ast.Attribute) and node.func.attr == "register" \
                and isinstance(node.func.value, ast.Name | ast.Attribute) and node.args:
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else node.func.value.attr
            first = node.args[0]
            if owner.endswith("Registry") and isinstance(first, ast.Constant) and isinstance(first.value, str):
                out.add(first.value)
    return out


def _literal_at(ctx: Context, finding: Finding) -> object:
    """The literal value a finding points at (None when it is not a single literal)."""
    if finding.line != finding.end_line or not 1 <= finding.line <= len(ctx.lines):
        return None
    text = ctx.lines[finding.line - 1][finding.col:finding.end_col]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _rename_keeps_signature(ctx: Context, fix: Fix) -> bool:
    """Whether the method renamed to a hook accepts exactly what the Trainer will pass to that hook."""
    from .rules.hooks import _params, _signature_problem

    line, old, new = fix.data.get("line"), fix.data.get("old"), fix.data.get("new")
    for cls in ctx.scan.classes:
        fn = cls.methods.get(str(old))
        if fn is None or fn.lineno != line:
            continue
        hook = HOOKS_BY_OWNER.get(ctx.resolved(cls).kind or "", {}).get(str(new))
        if hook is None:
            return False
        return _signature_problem(str(new), hook, *_params(fn)) is None
    return False


# --------------------------------------------------------------------------------------------------
# Removed Trainer keywords: rewrites that depend on the value
# --------------------------------------------------------------------------------------------------
#: Device-count keywords of 1.x: 0/None/"0" meant "none of these" (so the CPU), anything else that many.
_DEVICE_COUNT = {"gpus": "gpu", "tpu_cores": "tpu"}


def removed_keyword_fix(ctx: Context, call: ast.Call, kw: ast.keyword, removed: Removed) -> Fix | None:
    """The rewrite of a removed Trainer keyword, or None when no rewrite keeps its meaning."""
    assert removed.rewrite is not None
    value = kw.value
    value_src = ctx.source_segment(value) or "None"
    const = value.value if isinstance(value, ast.Constant) else ...
    safe = True
    template = removed.rewrite
    if kw.arg in _DEVICE_COUNT:
        accel = _DEVICE_COUNT[kw.arg]
        if const is None or const == 0 or (isinstance(const, str) and const.strip() in ("", "0")):
            template = 'accelerator="cpu"'  # 1.x trained on the CPU: 2.x's default "auto" would not
        elif _is_device_literal(value):
            template = f'accelerator="{accel}", devices={{value}}'
        elif accel == "gpu" and _is_cuda_available_count(value):
            # one GPU when there is one, else the CPU: "auto" does that (but it also picks MPS/TPU)
            template, safe = "accelerator=\"auto\", devices=1", False
        else:
            # a run-time value: the same choice spelled out (it evaluates the expression twice)
            template = f'accelerator="{accel}" if {{value}} else "cpu", devices={{value}} or "auto"'
            safe = False
    elif kw.arg == "checkpoint_callback":
        if isinstance(const, bool):
            template = "enable_checkpointing={value}"
        elif isinstance(value, ast.Call) and ctx.lightning_name(value.func) == "ModelCheckpoint" \
                and not any(k.arg == "callbacks" for k in call.keywords):
            template = "callbacks=[{value}]"  # 1.x used the instance as the checkpoint callback
        else:
            return None  # a callback object alongside callbacks=..., or a run-time flag: only described
    elif kw.arg == "reload_dataloaders_every_epoch":
        if const is True:
            template = "reload_dataloaders_every_n_epochs=1"
        elif const is False:
            template = ""
        else:
            return None
    elif kw.arg == "terminate_on_nan":
        safe = False  # detect_anomaly raises on NaN gradients, terminate_on_nan stopped on a NaN loss
    elif kw.arg == "num_processes" and const is None:
        template = ""
    present = {k.arg for k in call.keywords if k is not kw}
    parts = _split_parts(template.format(value=value_src)) if template else []
    parts = [p for p in parts if p.split("=", 1)[0].strip() not in present]
    if not parts:
        return Fix("drop_keyword", f"Remove {kw.arg}=", {"span": ctx.span(call), "keyword": kw.arg}, safe=safe)
    text = ", ".join(parts)
    return Fix("replace_expr", f"Replace with {text}", {"span": ctx.span(kw), "text": text}, safe=safe)


def _split_parts(text: str) -> list[str]:
    """`a=1, b=f(x, y)` -> ['a=1', 'b=f(x, y)']: split on top-level commas only."""
    parts, depth, start = [], 0, 0
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _is_device_literal(value: ast.expr) -> bool:
    """A literal device count or id list (2, -1, "0,1", [0, 1])."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, int | str) and not isinstance(value.value, bool)
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
        return isinstance(value.operand, ast.Constant) and isinstance(value.operand.value, int)
    if isinstance(value, ast.List | ast.Tuple):
        return all(isinstance(e, ast.Constant) and isinstance(e.value, int) for e in value.elts)
    return False


def _is_cuda_available_count(value: ast.expr) -> bool:
    """`int(torch.cuda.is_available())` or `1 if torch.cuda.is_available() else 0`."""
    def available(e: ast.expr) -> bool:
        return isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "is_available" \
            and isinstance(e.func.value, ast.Attribute) and e.func.value.attr == "cuda"

    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "int" \
            and len(value.args) == 1:
        return available(value.args[0])
    if isinstance(value, ast.IfExp) and available(value.test):
        return isinstance(value.body, ast.Constant) and value.body.value == 1 \
            and isinstance(value.orelse, ast.Constant) and value.orelse.value in (0, None)
    return False
