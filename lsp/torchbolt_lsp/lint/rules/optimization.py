"""TB3xx: automatic vs manual optimization.

Under automatic optimization the Trainer calls backward, optimizer.step and zero_grad around
training_step (reference §2.1 step 13); doing it again inside training_step double-steps. The manual
API (`self.manual_backward`, stepping `self.optimizers()`) needs `self.automatic_optimization = False`.
"""

from __future__ import annotations

import ast

from ..engine import Context, checks
from ..facts import dotted
from ..model import Fix, Severity, declare

MANUAL_CALLS = declare(
    "TB301", "manual-step-under-automatic-optimization",
    "loss.backward()/optimizer.step()/optimizer.zero_grad() inside training_step under automatic optimization.",
    Severity.ERROR, fixable=True)
MANUAL_API = declare(
    "TB302", "manual-api-without-manual-optimization",
    "self.manual_backward or self.optimizers() in training_step without self.automatic_optimization = False.",
    Severity.ERROR, fixable=True)


def _optimizer_names(nodes: list[ast.AST]) -> set[str]:
    """Local names bound to `self.optimizers()` (or unpacked from it) among a function's nodes."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Assign) and _is_optimizers_call(node.value):
            for target in node.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
    return names


def _is_optimizers_call(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    return (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "optimizers"
            and isinstance(expr.func.value, ast.Name) and expr.func.value.id == "self")


def _looks_like_optimizer(expr: ast.expr, local: set[str]) -> bool:
    if _is_optimizers_call(expr):
        return True
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    text = dotted(expr) or ""
    last = text.split(".")[-1].lower()
    if "sched" in last:
        return False
    return text in local or "opt" in last


@checks(MANUAL_CALLS, MANUAL_API)
def check_optimization_mode(ctx: Context) -> None:
    for cls, res in ctx.classes_of("module"):
        if not res.complete:
            continue
        step = cls.methods.get("training_step")
        if not res.manual_optimization:
            auto_off = Fix("disable_automatic_optimization", "Switch to manual optimization "
                           "(self.automatic_optimization = False)", {"class_line": cls.node.lineno})
            # the calls inside training_step come from the file's single walk (nested functions included)
            step_calls = [site.call for site in ctx.calls_in(cls) if site.method is step] if step else []
            attrs = [c.func.attr for c in step_calls if isinstance(c.func, ast.Attribute)]
            manual_intent = "manual_backward" in attrs
            steps_itself = "step" in attrs
            if step is not None and not manual_intent:  # with manual_backward, TB302 says it all
                wanted = [c for c in step_calls if isinstance(c.func, ast.Attribute)
                          and c.func.attr in ("backward", "step", "zero_grad")]
                local = _optimizer_names(list(ast.walk(step))) if wanted else set()
                for node in wanted:
                    assert isinstance(node.func, ast.Attribute)  # filtered above
                    attr = node.func.attr
                    recv = node.func.value
                    what = None
                    if attr == "backward" and not (isinstance(recv, ast.Name) and recv.id == "self"):
                        what = f"{dotted(recv) or 'loss'}.backward()"
                    elif attr in ("step", "zero_grad") and _looks_like_optimizer(recv, local):
                        what = f"{dotted(recv) or 'optimizer'}.{attr}()"
                    elif attr == "zero_grad" and isinstance(recv, ast.Name) and recv.id == "self":
                        what = "self.zero_grad()"
                    if what is None:
                        continue
                    ctx.report(MANUAL_CALLS, node,
                               f"`{what}` inside training_step runs a second time: under automatic optimization "
                               "the Trainer already calls backward, optimizer.step and zero_grad; remove it, or "
                               "set self.automatic_optimization = False and use self.manual_backward(loss).",
                               [Fix("remove_statement", "Remove the manual optimizer call",
                                    {"span": ctx.span(node)}),
                                Fix("to_manual_optimization", "Switch to manual optimization",
                                    {"class_line": cls.node.lineno, "method": "training_step"})])
            for site in ctx.calls_in(cls):
                func = site.call.func
                if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                        and func.value.id == "self"):
                    continue
                if func.attr == "manual_backward":
                    ctx.report(MANUAL_API, site.call,
                               "self.manual_backward raises under automatic optimization; set "
                               "self.automatic_optimization = False in __init__.", [auto_off])
                elif func.attr == "optimizers" and site.method is step and steps_itself:
                    ctx.report(MANUAL_API, site.call,
                               "training_step steps self.optimizers() itself while automatic optimization is on, "
                               "so every batch is stepped twice; set self.automatic_optimization = False.",
                               [auto_off])
