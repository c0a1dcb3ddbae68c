"""TB4xx: `self.log` where Lightning allows it, with values it accepts, and monitored names that exist.

Facts: `LOG_RULES`/`LOG_FORBIDDEN` (Lightning's per-hook table), the callback `monitor` arguments,
`LR_SCHEDULER_CONFIG_KEYS`, `ALWAYS_MONITORABLE`; logged names across the workspace from `Project`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from torchbolt.catalog import (
    ALWAYS_MONITORABLE,
    CALLBACKS_BY_NAME,
    HOOKS_BY_OWNER,
    LOG_FORBIDDEN,
    LOG_RULES,
    did_you_mean,
)

from ...analysis.facts import unforked
from ..engine import Context, checks
from ..facts import CallSite
from ..model import Fix, Severity, declare

LOG_NOT_ALLOWED = declare(
    "TB401", "log-in-forbidden-hook", "self.log in a hook where Lightning refuses logging.", Severity.ERROR)
LOG_LEVEL = declare(
    "TB402", "log-level-not-allowed",
    "on_step/on_epoch value that the hook does not allow (e.g. on_step=True in on_train_epoch_end).",
    Severity.ERROR)
LOG_VALUE = declare(
    "TB403", "log-value-not-scalar", "A logged value that is obviously not a scalar (dict, list, string, None).",
    Severity.ERROR)
MONITOR_UNKNOWN = declare(
    "TB404", "monitor-not-logged",
    "A monitor= key (ModelCheckpoint, EarlyStopping, scheduler config) that nothing in the workspace logs.",
    Severity.WARNING, fixable=True)

_NOT_SCALAR = (ast.Dict, ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.JoinedStr)


def _hook_name(site: CallSite) -> str | None:
    return getattr(site.method, "name", None)


@checks(LOG_NOT_ALLOWED, LOG_LEVEL, LOG_VALUE)
def check_log_calls(ctx: Context) -> None:
    for site in ctx.scan.log_sites():
        kind = ctx.class_kind(site.cls)
        if kind not in ("module", "callback"):
            continue
        call = site.call
        assert isinstance(call.func, ast.Attribute)
        method = call.func.attr
        hook = _hook_name(site)
        known = HOOKS_BY_OWNER[kind].get(hook or "")
        where = f"{'Callback.' if kind == 'callback' else ''}{hook}"
        if hook in LOG_FORBIDDEN or (known is not None and known.entry_points and hook not in LOG_RULES):
            ctx.report(LOG_NOT_ALLOWED, call,
                       f"self.{method}() is not allowed in `{where}`: Lightning raises MisconfigurationException "
                       "there; log from a step or an on_*_epoch_end hook instead.")
            continue
        rule = LOG_RULES.get(hook or "")
        if rule is not None:
            for kw in call.keywords:
                if kw.arg in ("on_step", "on_epoch") and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, bool):
                    allowed = rule.allowed_on_step if kw.arg == "on_step" else rule.allowed_on_epoch
                    if kw.value.value not in allowed:
                        ctx.report(LOG_LEVEL, kw,
                                   f"`{kw.arg}={kw.value.value}` is not allowed in `{where}` (allowed: "
                                   f"{', '.join(str(v) for v in allowed)}); remove it or log from another hook.")
        if method == "log":
            value = call.args[1] if len(call.args) > 1 else next(
                (k.value for k in call.keywords if k.arg == "value"), None)
            if value is not None and _not_scalar(value):
                hint = ("use self.log_dict({...}) for several values" if isinstance(value, ast.Dict | ast.DictComp)
                        else "log a number or a one-element tensor (e.g. tensor.mean())")
                ctx.report(LOG_VALUE, value, f"self.log() needs a scalar value, got {_describe(value)}; {hint}.")
        else:
            arg = call.args[0] if call.args else next(
                (k.value for k in call.keywords if k.arg == "dictionary"), None)
            if arg is not None and isinstance(arg, ast.List | ast.Tuple | ast.Set | ast.Constant | ast.JoinedStr):
                ctx.report(LOG_VALUE, arg, f"self.log_dict() needs a mapping of names to scalars, got "
                                           f"{_describe(arg)}.")
            elif isinstance(arg, ast.Dict):
                for v in arg.values:
                    if _not_scalar(v):
                        ctx.report(LOG_VALUE, v, f"self.log_dict() values must be scalars, got {_describe(v)}; "
                                                 "flatten nested dicts into 'a/b' names.")


def _not_scalar(value: ast.expr) -> bool:
    if isinstance(value, _NOT_SCALAR):
        return True
    return isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str | bytes))


def _describe(value: ast.expr) -> str:
    if isinstance(value, ast.Constant):
        return "None" if value.value is None else f"a {type(value.value).__name__} literal"
    names = {ast.Dict: "a dict", ast.DictComp: "a dict", ast.List: "a list", ast.ListComp: "a list",
             ast.Tuple: "a tuple", ast.Set: "a set", ast.SetComp: "a set", ast.JoinedStr: "a string"}
    return names.get(type(value), "a non-scalar")


def _monitor_sites(ctx: Context) -> Iterator[tuple[ast.Constant, str, str | None]]:
    """(string constant node, owner description, enclosing class) for each literal monitor= key in the file."""
    for site in ctx.scan.calls:
        name = ctx.lightning_name(site.call.func)
        spec = CALLBACKS_BY_NAME.get(name or "")
        if spec is None or spec.arg("monitor") is None:
            continue
        position = [a.name for a in spec.args].index("monitor")
        value = site.call.args[position] if len(site.call.args) > position else next(
            (k.value for k in site.call.keywords if k.arg == "monitor"), None)
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            yield value, f"{name}(monitor=...)", site.cls.node.name if site.cls is not None else None
    for cls, _ in ctx.classes_of("module"):
        fn = cls.methods.get("configure_optimizers")
        if fn is None:
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "monitor" and isinstance(value, ast.Constant) \
                            and isinstance(value.value, str):
                        yield value, "the scheduler config's monitor", cls.node.name


def _available(name: str, logged: frozenset[str], patterns: tuple[re.Pattern[str], ...]) -> bool:
    """Whether `name` is logged (literally, as a forked _step/_epoch name, or by a pattern) or always there."""
    if name in logged or name in ALWAYS_MONITORABLE:
        return True
    base = name.split("/dataloader_idx_")[0]
    if unforked(base) in logged:  # on_step and on_epoch both True fork the name
        return True
    return base in logged or any(p.fullmatch(name) or p.fullmatch(base) for p in patterns)


@checks(MONITOR_UNKNOWN)
def check_monitor_keys(ctx: Context) -> None:
    sites = list(_monitor_sites(ctx))
    if not sites:
        return
    if not ctx.project.has_modules():
        return  # the modules are outside the workspace: cannot tell
    for node, owner, class_name in sites:
        scope = ctx.project.monitorable(ctx.path, class_name)
        if scope is None:
            continue  # a name built at run time can reach this monitor
        logged, patterns = scope
        name = str(node.value)  # _monitor_sites yields string constants only
        if _available(name, logged, patterns):
            continue
        guess = did_you_mean(name, sorted(logged))
        fixes = [Fix("replace_string", f"Use '{guess}'", {"span": ctx.span(node), "value": guess})] if guess else []
        known = ", ".join(sorted(logged)[:8]) or "nothing"
        ctx.report(MONITOR_UNKNOWN, node,
                   f"{owner} watches '{name}', but nothing in the workspace logs it (logged: {known}); "
                   + (f"did you mean '{guess}'?" if guess else "log it with self.log or fix the name."), fixes)
