"""TB5xx: keyword arguments of Trainer, the built-in callbacks, loggers and `self.log`.

Every fact (names, types, choices, constraints, removed 1.x keywords with their rewrite templates,
legacy precision spellings, removed strategies) is read from `torchbolt.catalog`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from torchbolt.catalog import (
    CALLBACKS_BY_NAME,
    LOG_ARGS,
    LOG_DICT_ARGS,
    LOGGERS,
    PRECISION_ALIASES,
    PRECISION_REWRITES,
    REMOVED_STRATEGIES,
    REMOVED_TRAINER_ARGS,
    TRAINER_ARGS,
    Arg,
    did_you_mean,
)

from ..engine import Context, checks
from ..model import Fix, Severity, declare
from ..safety import removed_keyword_fix

UNKNOWN_KWARG = declare(
    "TB501", "unknown-keyword", "A keyword that Trainer/the callback/the logger/self.log does not accept.",
    Severity.ERROR, fixable=True)
REMOVED_KWARG = declare(
    "TB502", "removed-trainer-keyword", "A Trainer keyword that Lightning 2.x removed (gpus=, amp_backend=, ...).",
    Severity.ERROR, fixable=True)
LEGACY_PRECISION = declare(
    "TB503", "legacy-precision", "A precision value spelled the 1.x way (16, 'bf16', 32).", Severity.WARNING,
    fixable=True)
REMOVED_STRATEGY = declare(
    "TB504", "removed-strategy", "A strategy name that Lightning 2.x removed (dp, ddp_sharded, ...).",
    Severity.ERROR, fixable=True)
INVALID_CHOICE = declare(
    "TB505", "invalid-value", "A literal value outside the argument's allowed values (accelerator='gpuu').",
    Severity.ERROR, fixable=True)
WRONG_TYPE = declare(
    "TB506", "wrong-value-type", "A literal of the wrong type (max_epochs='10').", Severity.ERROR, fixable=True)
OUT_OF_RANGE = declare(
    "TB507", "value-out-of-range", "A numeric literal outside the argument's range (accumulate_grad_batches=0).",
    Severity.ERROR)

_TRAINER = {a.name: a for a in TRAINER_ARGS}
_LOGGERS = {spec.name: spec for spec in LOGGERS}


def _targets(ctx: Context) -> Iterator[tuple[ast.Call, str, dict[str, Arg]]]:
    """(call, display name, accepted args) for every Trainer/callback/logger/self.log call in the file."""
    for site in ctx.scan.calls:
        name = ctx.lightning_name(site.call.func)
        if name is None:
            continue
        if name == "Trainer":
            yield site.call, "Trainer", _TRAINER
        elif name in CALLBACKS_BY_NAME and CALLBACKS_BY_NAME[name].args:
            yield site.call, name, {a.name: a for a in CALLBACKS_BY_NAME[name].args}
        elif name in _LOGGERS:
            yield site.call, name, {a.name: a for a in _LOGGERS[name].args}
    for site in ctx.scan.log_sites():
        if ctx.class_kind(site.cls) in ("module", "callback"):
            func = site.call.func
            assert isinstance(func, ast.Attribute)  # log_sites are attribute calls
            attr = func.attr
            args = LOG_ARGS if attr == "log" else LOG_DICT_ARGS
            yield site.call, f"self.{attr}", {a.name: a for a in args}


def literal(node: ast.expr) -> tuple[str, Any] | None:
    """(kind, value) of a literal argument: bool/int/float/str/none/dict/list; None when not a literal."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            return "bool", v
        if isinstance(v, int):
            return "int", v
        if isinstance(v, float):
            return "float", v
        if isinstance(v, str):
            return "str", v
        if v is None:
            return "none", None
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        number = node.operand.value
        if isinstance(number, int | float) and not isinstance(number, bool):
            return ("int" if isinstance(number, int) else "float"), -number
    if isinstance(node, ast.Dict):
        return "dict", None
    if isinstance(node, ast.List | ast.Tuple):
        return "list", None
    return None


def _type_ok(kind: str, types: tuple[str, ...]) -> bool:
    if not types or kind in types:
        return True
    return kind == "int" and "float" in types


_CLAUSE = re.compile(r"^(?:(int|float)\s+)?(?:(>=|>|<=|<)\s*(-?[\d.]+)|in\s*([\[(])\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*([\])])"
                     r"|(-?[\d.]+))$")


def satisfies(constraint: str, kind: str, value: float) -> bool | None:
    """Whether a number meets a catalog constraint like 'int >= 0 or float in [0.0, 1.0]'; None if unparsed."""
    if not constraint:
        return None
    for clause in constraint.split(" or "):
        m = _CLAUSE.match(clause.strip())
        if m is None:
            return None
        want, op, bound, lo_br, lo, hi, hi_br, exact = m.groups()
        if want and want != kind:
            continue
        if exact is not None:
            if value == float(exact):
                return True
        elif op is not None:
            b = float(bound)
            if {">=": value >= b, ">": value > b, "<=": value <= b, "<": value < b}[op]:
                return True
        else:
            low_ok = value >= float(lo) if lo_br == "[" else value > float(lo)
            high_ok = value <= float(hi) if hi_br == "]" else value < float(hi)
            if low_ok and high_ok:
                return True
    return False


def _kw_name_span(ctx: Context, kw: ast.keyword) -> tuple[int, int, int, int]:
    line = kw.lineno
    col = ctx.char_col(line, kw.col_offset)
    return line, col, line, col + len(kw.arg or "")


def _assigned_name(ctx: Context, call: ast.Call) -> str | None:
    return ctx.scan.assigned_to.get(id(call))


@checks(UNKNOWN_KWARG, REMOVED_KWARG, LEGACY_PRECISION, REMOVED_STRATEGY, INVALID_CHOICE, WRONG_TYPE, OUT_OF_RANGE)
def check_arguments(ctx: Context) -> None:
    for call, owner, accepted in _targets(ctx):
        for kw in call.keywords:
            if kw.arg is None:
                continue  # **kwargs: unknown statically
            arg = accepted.get(kw.arg)
            if arg is None:
                _unknown(ctx, call, owner, accepted, kw)
                continue
            _check_value(ctx, owner, arg, kw)


def _unknown(ctx: Context, call: ast.Call, owner: str, accepted: dict[str, Arg], kw: ast.keyword) -> None:
    removed = REMOVED_TRAINER_ARGS.get(kw.arg or "") if owner == "Trainer" else None
    if removed is not None:
        fixes = []
        if removed.rewrite is not None and (fix := removed_keyword_fix(ctx, call, kw, removed)) is not None:
            fixes.append(fix)
        elif kw.arg == "resume_from_checkpoint" and (var := _assigned_name(ctx, call)):
            fixes.append(Fix("move_to_fit", f"Pass it to {var}.fit(ckpt_path=...)",
                             {"span": ctx.span(call), "keyword": kw.arg, "var": var,
                              "value": ctx.source_segment(kw.value) or "None"}))
        ctx.report(REMOVED_KWARG, kw, f"Trainer(`{kw.arg}=`) was removed in Lightning {removed.removed_in} and "
                                      f"raises TypeError; {removed.replacement}.", fixes)
        return
    guess = did_you_mean(kw.arg or "", accepted)
    present = {k.arg for k in call.keywords}
    fixes = [] if guess in present else [Fix("replace_expr", f"Rename to {guess}", {"span": _kw_name_span(ctx, kw), "text": guess})] if guess else []
    # (renaming onto a keyword that is already given would make the call a SyntaxError)
    ctx.report(UNKNOWN_KWARG, _kw_name_span(ctx, kw),
               f"{owner}() has no argument `{kw.arg}`" + (f"; did you mean `{guess}`?" if guess else
                                                          f"; see the accepted arguments of {owner}."), fixes)


def _check_value(ctx: Context, owner: str, arg: Arg, kw: ast.keyword) -> None:
    lit = literal(kw.value)
    if lit is None:
        return
    kind, value = lit
    span = ctx.span(kw.value)
    if owner == "Trainer" and arg.name == "precision" and kind in ("int", "str") and value in PRECISION_REWRITES:
        new = PRECISION_REWRITES[value]
        ctx.report(LEGACY_PRECISION, kw.value,
                   f"precision={value!r} is the 1.x spelling; write precision={new!r}.",
                   [Fix("replace_string", f"Use '{new}'", {"span": span, "value": new})])
        return
    if owner == "Trainer" and arg.name == "strategy" and kind == "str" and value in REMOVED_STRATEGIES:
        new = REMOVED_STRATEGIES[value]
        ctx.report(REMOVED_STRATEGY, kw.value,
                   f"strategy={value!r} was removed in Lightning 2.x; use strategy={new!r}.",
                   [Fix("replace_string", f"Use '{new}'", {"span": span, "value": new})])
        return
    if not _type_ok(kind, arg.types):
        fixes = []
        if kind == "str":
            converted = _convert(value, arg.types)
            if converted is not None:
                fixes.append(Fix("replace_expr", f"Use {converted}", {"span": span, "text": converted}))
        ctx.report(WRONG_TYPE, kw.value,
                   f"`{arg.name}` expects {' or '.join(arg.types)} ({arg.annotation}), got {kind} {value!r}"
                   if kind not in ("dict", "list") else
                   f"`{arg.name}` expects {' or '.join(arg.types)} ({arg.annotation}), got a {kind}", fixes)
        return
    if arg.choices and not arg.choices_open and kind == "str" and not owner.startswith("self."):
        allowed = [c for c in arg.choices if isinstance(c, str)]
        aliases = {k: v for k, v in PRECISION_ALIASES.items() if isinstance(k, str)} if arg.name == "precision" else {}
        if value not in arg.choices and value not in aliases:
            # "fp16"/"fp32": the number is what matters, so try it without the prefix first
            bare = value.removeprefix("fp") if arg.name == "precision" else value
            guess = bare if bare in allowed or bare in aliases else did_you_mean(value, [*allowed, *aliases])
            guess = aliases.get(guess, guess) if guess else None
            fixes = [Fix("replace_string", f"Use '{guess}'", {"span": span, "value": guess})] if guess else []
            ctx.report(INVALID_CHOICE, kw.value,
                       f"{arg.name}={value!r} is not a valid value for {owner}"
                       + (f"; did you mean {guess!r}?" if guess else f"; use one of {', '.join(map(repr, allowed))}."),
                       fixes)
        return
    if kind in ("int", "float") and arg.constraint:
        ok = satisfies(arg.constraint, kind, value)
        if ok is False:
            ctx.report(OUT_OF_RANGE, kw.value,
                       f"{arg.name}={value!r} is out of range for {owner}: it must be {arg.constraint}.")


def _convert(text: str, types: tuple[str, ...]) -> str | None:
    """The literal a numeric/boolean string should have been ('10' -> 10), when unambiguous."""
    t = text.strip()
    if "int" in types and re.fullmatch(r"-?\d+", t):
        return str(int(t))
    if "float" in types and re.fullmatch(r"-?\d*\.\d+(e-?\d+)?|-?\d+e-?\d+", t):
        return repr(float(t))
    if "bool" in types and t.lower() in ("true", "false"):
        return "True" if t.lower() == "true" else "False"
    if "none" in types and t.lower() == "none":
        return "None"
    return None
