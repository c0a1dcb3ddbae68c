"""TB5xx: keyword arguments of Trainer, the built-in callbacks, loggers and `self.log`.

Every fact (names, types, choices, constraints, removed 1.x keywords with their rewrite templates,
legacy precision spellings, removed strategies) is read from `torchbolt.catalog`. Two sources can only
widen what is accepted, never narrow it: the user's installed Lightning (its `__init__` signatures,
read from source by the workspace index: an argument it accepts is never reported as unknown), and the
workspace (a `Trainer` subclass's own parameters, strategy/accelerator names registered with
`StrategyRegistry.register`). Calls of `Trainer` subclasses (`class MyTrainer(pl.Trainer)`, an installed
`flash.Trainer`) get the Trainer rules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
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

from ...analysis.names import TRAINER_SUBCLASSES
from .. import facts as F
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
#: Callees that pass other keywords on to a library (ThroughputMonitor(window_size=...), WandbLogger(...)).
_EXTRA_KWARGS = {spec.name for spec in (*CALLBACKS_BY_NAME.values(), *LOGGERS) if spec.extra_kwargs}


@dataclass(frozen=True)
class _Target:
    """A call the rules check: the catalog's arguments, plus names accepted beyond them."""

    call: ast.Call
    owner: str  # display name: "Trainer", "MyTrainer", "ModelCheckpoint", "self.log"
    accepted: dict[str, Arg]  # the catalog's arguments (values checked)
    also: frozenset[str] = frozenset()  # accepted too (installed Lightning, a subclass's own parameters)
    open: bool = False  # takes any keyword (**kwargs in the real signature): unknown names are not reported


def _signature(ctx: Context, path: str, class_name: str) -> tuple[frozenset[str], bool] | None:
    """(parameter names, takes **kwargs) of the nearest `__init__` of a resolved class, or None."""
    params = ctx.project.resolved(path, class_name).init_params
    if params is None:
        return None
    names = frozenset(p for p in params if not p.startswith("*"))
    return names, any(p.startswith("**") for p in params)


def _installed(ctx: Context, func: ast.expr) -> tuple[frozenset[str], bool] | None:
    """The signature of the called Lightning class in the user's installed Lightning (never torchbolt's own:
    the catalog is its signature)."""
    qualified = ctx.qualify(func)
    key = ("installed-signature", qualified, ctx.path if qualified == F.dotted(func) else "")
    return ctx.project.remember(key, lambda: _installed_signature(ctx, func))  # type: ignore[return-value]


def _installed_signature(ctx: Context, func: ast.expr) -> tuple[frozenset[str], bool] | None:
    qualified = ctx.qualify(func)
    if not qualified or "." not in qualified or qualified.split(".")[0] == "torchbolt":
        return None
    hit = ctx.project.resolve_qualified(qualified, near=ctx.path)
    return _signature(ctx, hit[0], hit[1].name) if hit is not None else None


def _trainer_subclass(ctx: Context, func: ast.expr) -> tuple[str, tuple[frozenset[str], bool] | None] | None:
    """(display name, own signature) when the call creates a subclass of Lightning's Trainer."""
    key = ("trainer-subclass", F.dotted(func))
    if key not in ctx.memo:
        ctx.memo[key] = _find_trainer_subclass(ctx, func)
    return ctx.memo[key]  # type: ignore[return-value]


def _find_trainer_subclass(ctx: Context, func: ast.expr) -> tuple[str, tuple[frozenset[str], bool] | None] | None:
    source = F.dotted(func)
    last = source.rpartition(".")[2] if source else ""
    if source is None or not last[:1].isupper():
        return None  # classes only (a function call is never a Trainer)
    qualified = ctx.qualify(func)
    # installed packages are read only for names that say Trainer (torch.nn.Linear(bias=...) stays cheap)
    installed = "Trainer" in last
    if "." not in source:
        hit = ctx.project.resolve_class(ctx.path, source, installed=installed)
    else:
        hit = ctx.project.resolve_qualified(qualified, near=ctx.path, installed=installed) if qualified else None
    if hit is None:
        if qualified in TRAINER_SUBCLASSES:
            return source, None  # not installed here: its own arguments are unknown
        return None
    if ctx.project.resolved(hit[0], hit[1].name).kind != "trainer":
        return None
    return source, _signature(ctx, hit[0], hit[1].name)


def _targets(ctx: Context) -> Iterator[_Target]:
    """Every Trainer/callback/logger/self.log call in the file, with what it accepts."""
    for site in ctx.scan.calls:
        if not site.call.keywords:
            continue  # only keywords are checked
        func = site.call.func
        name = ctx.lightning_name(func)
        if name is None:
            last = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            # only a class (a capitalized name) can be a Trainer subclass
            sub = _trainer_subclass(ctx, func) if last[:1].isupper() else None
            if sub is not None:
                owner, own = sub
                # the subclass's own parameters are accepted; when they are unknown, so is any keyword
                yield _Target(site.call, owner, _TRAINER, own[0] if own else frozenset(), own is None)
            continue
        if name == "Trainer":
            accepted = _TRAINER
        elif name in CALLBACKS_BY_NAME and CALLBACKS_BY_NAME[name].args:
            accepted = {a.name: a for a in CALLBACKS_BY_NAME[name].args}
        elif name in _LOGGERS:
            accepted = {a.name: a for a in _LOGGERS[name].args}
        else:
            continue
        real = _installed(ctx, func)
        yield _Target(site.call, name, accepted, real[0] if real else frozenset(), bool(real and real[1]))
    for site in ctx.scan.log_sites():
        if site.call.keywords and ctx.class_kind(site.cls) in ("module", "callback"):
            func = site.call.func
            assert isinstance(func, ast.Attribute)  # log_sites are attribute calls
            attr = func.attr
            args = LOG_ARGS if attr == "log" else LOG_DICT_ARGS
            yield _Target(site.call, f"self.{attr}", {a.name: a for a in args})


def registered_names(ctx: Context) -> frozenset[str]:
    """Strategy / accelerator names the workspace registers (`StrategyRegistry.register("name", ...)`)."""
    return frozenset(name for facts in ctx.project.files().values() for name in facts.registered)


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
    registered: frozenset[str] | None = None
    for target in _targets(ctx):
        call, owner, accepted = target.call, target.owner, target.accepted
        for kw in call.keywords:
            if kw.arg is None:
                continue  # **kwargs: unknown statically
            arg = accepted.get(kw.arg)
            if arg is None:
                # what the user's Lightning, the subclass or a constructor passing keywords on accepts is fine
                if kw.arg not in target.also and owner not in _EXTRA_KWARGS:
                    _unknown(ctx, call, owner, accepted, kw, target.open)
                continue
            if arg.name in ("strategy", "accelerator") and accepted is _TRAINER:
                if registered is None:
                    registered = registered_names(ctx)
                if isinstance(kw.value, ast.Constant) and kw.value.value in registered:
                    continue  # a name the workspace registers itself
            _check_value(ctx, "Trainer" if accepted is _TRAINER else owner, arg, kw)


def _unknown(ctx: Context, call: ast.Call, owner: str, accepted: dict[str, Arg], kw: ast.keyword,
             open_signature: bool = False) -> None:
    removed = REMOVED_TRAINER_ARGS.get(kw.arg or "") if accepted is _TRAINER else None
    if removed is None and open_signature:
        return  # the real signature takes **kwargs: nothing is unknown
    if removed is not None:
        fixes = []
        if removed.rewrite is not None and (fix := removed_keyword_fix(ctx, call, kw, removed)) is not None:
            fixes.append(fix)
        elif kw.arg == "resume_from_checkpoint" and (var := _assigned_name(ctx, call)):
            fixes.append(Fix("move_to_fit", f"Pass it to {var}.fit(ckpt_path=...)",
                             {"span": ctx.span(call), "keyword": kw.arg, "var": var,
                              "value": ctx.source_segment(kw.value) or "None"}))
        ctx.report(REMOVED_KWARG, kw, f"{owner}(`{kw.arg}=`) was removed in Lightning {removed.removed_in} and "
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
