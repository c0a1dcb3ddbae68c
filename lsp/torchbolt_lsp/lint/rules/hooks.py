"""TB1xx: hooks of LightningModule, LightningDataModule and Callback classes.

Facts (hook names, signatures, step-call arities, removed hooks and parameters) come from
`torchbolt.catalog`; inheritance across files comes from the workspace `Project`.
"""

from __future__ import annotations

import ast
import re

from torchbolt.catalog import (
    HOOKS_BY_OWNER,
    MODULE_MEMBERS,
    REMOVED_HOOK_PARAMS,
    REMOVED_HOOKS,
    STEP_CALL_ARGS,
    Hook,
    did_you_mean,
)

from ..engine import Context, checks
from ..facts import ClassNode
from ..model import Fix, Severity, declare

MISSING_OPTIMIZERS = declare(
    "TB101", "missing-configure-optimizers",
    "A LightningModule that trains under automatic optimization has no configure_optimizers.",
    Severity.ERROR, fixable=True)
MISSING_TRAINING_STEP = declare(
    "TB102", "missing-training-step",
    "A LightningModule passed to Trainer.fit has evaluation hooks or configure_optimizers but no training_step.",
    Severity.ERROR)
MISSPELLED_HOOK = declare(
    "TB103", "misspelled-hook", "A method name is a near miss of a hook name, so the Trainer never calls it.",
    Severity.WARNING, fixable=True)
BAD_SIGNATURE = declare(
    "TB104", "impossible-hook-signature",
    "A hook's parameters cannot accept the arguments the Trainer passes.", Severity.ERROR)
REMOVED_HOOK = declare(
    "TB105", "removed-hook", "A 1.x hook that Lightning 2.x never calls or refuses.", Severity.ERROR,
    fixable=True)
REMOVED_PARAM = declare(
    "TB106", "removed-hook-parameter",
    "A hook or method uses a 1.x parameter (optimizer_idx, outputs, ...) that 2.x no longer passes.",
    Severity.ERROR, fixable=True)
NO_LOSS = declare(
    "TB107", "training-step-returns-nothing",
    "training_step returns nothing under automatic optimization, so no optimizer step ever happens.",
    Severity.WARNING)

_MEMBER_NAMES = frozenset(m.name for m in MODULE_MEMBERS)
_EVAL_STEPS = ("validation_step", "test_step", "predict_step")
_EPOCH_END = re.compile(r"^(training|validation|test)_epoch_end$")


def _hooks_for(kind: str) -> dict[str, Hook]:
    table: dict[str, Hook] = HOOKS_BY_OWNER.get(kind, {})
    return table


@checks(MISSING_OPTIMIZERS, MISSING_TRAINING_STEP)
def check_required_hooks(ctx: Context) -> None:
    for cls, res in ctx.classes_of("module"):
        if not res.complete:
            continue  # a base we cannot see may define the hook
        name_span = ctx.name_span(cls.node)
        if "training_step" in res.methods and not res.manual_optimization \
                and "configure_optimizers" not in res.methods:
            ctx.report(MISSING_OPTIMIZERS, name_span,
                       f"`{cls.node.name}` defines training_step but no configure_optimizers, so fit fails "
                       "before the first batch; add configure_optimizers returning an optimizer.",
                       [Fix("add_configure_optimizers", "Add configure_optimizers (Adam over self.parameters())",
                            {"class_line": cls.node.lineno, "class": cls.node.name,
                             "add_import": "" if ctx.imports.get("torch") == "torch" else "torch"})])
        if "training_step" not in res.methods and "fit" in ctx.project.run_fns(ctx.path, cls.node.name):
            present = [h for h in (*_EVAL_STEPS, "configure_optimizers") if h in res.methods]
            if present:
                ctx.report(MISSING_TRAINING_STEP, name_span,
                           f"`{cls.node.name}` is passed to Trainer.fit and defines {', '.join(present)} but no "
                           "training_step; fit needs training_step (use trainer.validate/test otherwise).")


def _referenced_attributes(cls: ClassNode) -> set[str]:
    return {n.attr for n in ast.walk(cls.node) if isinstance(n, ast.Attribute)}


@checks(MISSPELLED_HOOK)
def check_misspelled(ctx: Context) -> None:
    for cls, res in ctx.classes_of("module", "datamodule", "callback"):
        hooks = _hooks_for(res.kind or "")
        names = set(hooks)
        used = None
        for name, fn in cls.methods.items():
            if name in names or name.startswith("_") or name in _MEMBER_NAMES or name in REMOVED_HOOKS:
                continue
            # Lightning spells "val" out in hook names (val_dataloader is the exception): try that first
            expanded = name.replace("val_", "validation_") if "validation" not in name else name
            guess = expanded if expanded in names else did_you_mean(name, names, cutoff=0.8)
            if guess is None or name.startswith(guess + "_") or guess.startswith(name + "_"):
                continue  # `validation_step_shared` is a helper, not a typo
            if guess in cls.methods:
                continue  # the real hook is defined too: this is a helper with a similar name
            if used is None:
                used = _referenced_attributes(cls)
            if name in used:
                continue  # called explicitly somewhere: a helper
            ctx.report(MISSPELLED_HOOK, ctx.name_span(fn),
                       f"`{name}` is not a {res.kind} hook, so the Trainer never calls it; did you mean "
                       f"`{guess}`?", [Fix("rename_def", f"Rename to {guess}", {"line": fn.lineno, "old": name,
                                                                              "new": guess})])


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[ast.arg], int, bool, list[str], bool]:
    """Positional params after self, how many are required, *args?, required keyword-only names, **kwargs?"""
    a = fn.args
    positional = (a.posonlyargs + a.args)[1:]
    n_defaults = len(a.defaults)
    required = max(len(positional) - n_defaults, 0)
    kw_required = [k.arg for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is None]
    return positional, required, a.vararg is not None, kw_required, a.kwarg is not None


@checks(BAD_SIGNATURE, REMOVED_PARAM)
def check_signatures(ctx: Context) -> None:
    for cls, res in ctx.classes_of("module", "datamodule", "callback"):
        hooks = _hooks_for(res.kind or "")
        for name, fn in cls.methods.items():
            hook = hooks.get(name)
            if hook is None or _is_static(fn):
                continue
            positional, required, varargs, kw_required, varkw = _params(fn)
            removed = [p.arg for p in positional if p.arg in REMOVED_HOOK_PARAMS.get(name, ())]
            if removed:
                expected = hook.signature(annotated=False).removeprefix("def ")
                extra = ""
                if name == "training_step" and "optimizer_idx" in removed:
                    extra = (" With several optimizers, set self.automatic_optimization = False and step them "
                             "in training_step via self.optimizers().")
                used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
                fixes = [] if extra or used & set(removed) else [
                    Fix("remove_param", f"Remove the {', '.join(removed)} parameter",
                        {"line": fn.lineno, "params": tuple(removed)})]
                ctx.report(REMOVED_PARAM, ctx.name_span(fn),
                           f"`{name}` no longer receives {', '.join(removed)} in Lightning 2.x, so the call fails; "
                           f"use `{expected}`.{extra}", fixes)
                continue
            problem = _signature_problem(name, hook, positional, required, varargs, kw_required, varkw)
            if problem:
                ctx.report(BAD_SIGNATURE, ctx.name_span(fn), problem)
    # calls of removed parameters: self.toggle_optimizer(opt, optimizer_idx)
    for site in ctx.scan.calls:
        func = site.call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
                and func.attr in REMOVED_HOOK_PARAMS and func.attr in _MEMBER_NAMES):
            continue
        if ctx.class_kind(site.cls) != "module":
            continue
        bad = [k.arg for k in site.call.keywords if k.arg in REMOVED_HOOK_PARAMS[func.attr]]
        if bad or len(site.call.args) > 1:
            ctx.report(REMOVED_PARAM, site.call,
                       f"`self.{func.attr}` takes only the optimizer in Lightning 2.x "
                       f"(the {', '.join(REMOVED_HOOK_PARAMS[func.attr])} argument was removed); "
                       f"call self.{func.attr}(optimizer).")


def _is_static(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in fn.decorator_list)


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _signature_problem(name: str, hook: Hook, positional: list[ast.arg], required: int, varargs: bool,
                       kw_required: list[str], varkw: bool) -> str | None:
    if kw_required:
        return (f"`{name}` has required keyword-only parameter(s) {', '.join(kw_required)} that the Trainer "
                f"never passes; give them defaults.")
    if name in STEP_CALL_ARGS:
        least, most = STEP_CALL_ARGS[name]
        if not positional and not varargs:
            return (f"`{name}` has no batch parameter, but the Trainer calls it with the batch; "
                    f"write `def {name}(self, batch, batch_idx)`.")
        if required > most:
            return (f"`{name}` requires {_n(required, 'argument')} but the Trainer passes at most {most} "
                    f"(batch, batch_idx{', dataloader_idx' if most > 2 else ''}); give the extra ones defaults.")
        return None
    params = [p for p in hook.params if p.kind == "positional"]
    if any(p.kind == "var_positional" for p in hook.params):
        return None
    if name in ("setup", "teardown"):
        if not varkw and "stage" not in [p.arg for p in positional]:
            call = "(trainer, pl_module, stage=...)" if params and params[0].name == "trainer" else "(stage=...)"
            return (f"`{name}` is called as {name}{call}, but it has no `stage` parameter; "
                    f"add `stage: str`.")
        return None
    passed_min = sum(1 for p in params if p.default is None)
    passed_max = len(params)
    names = [p.name for p in params]
    if "dataloader_idx" in names and not varargs:
        at = names.index("dataloader_idx")
        user_required = positional[:required]
        if params[at].default is not None and at < len(user_required):
            return (f"`{name}` requires `{user_required[at].arg}`, but the Trainer passes dataloader_idx only "
                    f"when there are several dataloaders; give it a default (`{user_required[at].arg}=0`).")
    if required > passed_max:
        return (f"`{name}` requires {_n(required, 'argument')} but the Trainer passes {passed_max} "
                f"({', '.join(p.name for p in params) or 'none'}); use `{hook.signature(annotated=False)[4:]}`.")
    if not varargs and len(positional) < passed_min:
        return (f"`{name}` accepts {_n(len(positional), 'argument')} but the Trainer passes {passed_min} "
                f"({', '.join(p.name for p in params)}); use `{hook.signature(annotated=False)[4:]}`.")
    return None


@checks(REMOVED_HOOK)
def check_removed_hooks(ctx: Context) -> None:
    for cls, res in ctx.classes_of("module", "callback"):
        for name, fn in cls.methods.items():
            removed = REMOVED_HOOKS.get(name)
            if removed is None:
                continue
            if not (removed.owner == res.kind or (res.kind == "callback" and name.startswith("on_"))):
                continue
            fixes = []
            match = _EPOCH_END.match(name)
            if match and res.kind == "module":
                stage = match.group(1)
                step = f"{stage}_step"
                new = f"on_{'train' if stage == 'training' else stage}_epoch_end"
                if step in cls.methods:
                    fixes.append(Fix("migrate_epoch_end", f"Migrate to {new} with outputs collected in {step}",
                                     {"class_line": cls.node.lineno, "old": name, "new": new, "step": step,
                                      "attr": f"{step}_outputs"}))
            what = ("raises NotImplementedError when it finds it" if match else "never calls it")
            ctx.report(REMOVED_HOOK, ctx.name_span(fn),
                       f"`{name}` was removed in Lightning {removed.removed_in} and 2.x {what}; "
                       f"{removed.replacement}.", fixes)


@checks(NO_LOSS)
def check_training_step_returns(ctx: Context) -> None:
    for cls, res in ctx.classes_of("module"):
        fn = cls.methods.get("training_step")
        if fn is None or res.manual_optimization or not res.complete:
            continue
        if _returns_value(fn):
            continue
        ctx.report(NO_LOSS, ctx.name_span(fn),
                   "`training_step` returns nothing under automatic optimization, so every batch is skipped "
                   "and no optimizer step happens; return the loss (or set self.automatic_optimization = False).")


def _returns_value(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """True when the function returns a value somewhere, yields, or only raises (an abstract stub)."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            continue
        if isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            return True
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
        stack.extend(ast.iter_child_nodes(node))
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                       and isinstance(s.value.value, str))]
    if not body:
        return True  # docstring only: an abstract stub
    only = body[0]
    return len(body) == 1 and (isinstance(only, ast.Pass | ast.Raise) or (
        isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant) and only.value.value is Ellipsis))
