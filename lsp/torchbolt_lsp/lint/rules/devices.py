"""TB2xx: devices and modes the Trainer manages.

The Trainer moves the module and every batch to the chosen accelerator, puts the module in eval mode
with gradients off around evaluation (`EVAL_MODE_HOOKS`) and in train mode for training batches
(`TRAIN_MODE_HOOKS`); code in a LightningModule or DataModule that pins a device or repeats those
switches either breaks `accelerator=` or is dead weight.
"""

from __future__ import annotations

import ast

from torchbolt.catalog import EVAL_MODE_HOOKS, TRAIN_MODE_HOOKS

from ..engine import Context, checks
from ..facts import CallSite
from ..model import Fix, Severity, declare

FIXED_DEVICE = declare(
    "TB201", "hard-coded-device",
    "A LightningModule/DataModule moves data to a fixed device (.cuda(), .to('cuda'), device='cuda').",
    Severity.WARNING, fixable=True)
REDUNDANT_MODE = declare(
    "TB202", "redundant-mode-switch",
    "self.train()/self.eval()/torch.no_grad() inside a hook where the Trainer already does it.",
    Severity.WARNING, fixable=True)

#: Methods that run before the Trainer moves the module, where a device is wrong rather than fixed.
_INIT_METHODS = ("__init__",)
_GRAD_OFF = ("no_grad", "inference_mode")


def _cuda_literal(ctx: Context, expr: ast.expr) -> bool:
    """'cuda', 'cuda:0', torch.device('cuda'), torch.device('cuda', 0)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value == "cuda" or expr.value.startswith("cuda:")
    if isinstance(expr, ast.Call) and ctx.qualify(expr.func) == "torch.device" and expr.args:
        return _cuda_literal(ctx, expr.args[0])
    return False


def _fix_target(site: CallSite, kind: str | None) -> str:
    """'remove' where self.device is not meaningful yet (or does not exist), else 'self.device'."""
    if kind == "datamodule" or (site.method is not None and getattr(site.method, "name", "") in _INIT_METHODS):
        return "remove"
    return "self.device"


@checks(FIXED_DEVICE)
def check_fixed_device(ctx: Context) -> None:
    for site in ctx.scan.calls:
        call = site.call
        func = call.func
        if site.method is None or not (
                (isinstance(func, ast.Attribute) and func.attr in ("cuda", "cpu", "to"))
                or any(kw.arg == "device" for kw in call.keywords)):
            continue  # cheap filter first: most calls are none of these
        kind = ctx.class_kind(site.cls)
        if kind not in ("module", "datamodule"):
            continue
        target = _fix_target(site, kind)
        if isinstance(func, ast.Attribute) and func.attr == "cuda" and ctx.qualify(func.value) != "torch":
            span = ctx.span(call)
            if call.args or call.keywords:
                fixes = []
            elif target == "remove":
                fixes = [Fix("drop_method_call", "Remove .cuda() (the Trainer moves it)", {"span": span})]
            else:
                fixes = [Fix("cuda_to_device", "Replace .cuda() with .to(self.device)", {"span": span})]
            ctx.report(FIXED_DEVICE, call,
                       ".cuda() pins this to the GPU and breaks Trainer(accelerator=...); the Trainer moves the "
                       "module and batches itself" + ("" if target == "remove" else "; use .to(self.device)")
                       + ".", fixes)
            continue
        if isinstance(func, ast.Attribute) and func.attr == "cpu" and not call.args:
            # `.cpu()` on the module or a submodule while training pins it; `x.cpu().numpy()` is fine
            recv = func.value
            on_module = (isinstance(recv, ast.Name) and recv.id == "self") or (
                isinstance(recv, ast.Attribute) and isinstance(recv.value, ast.Name) and recv.value.id == "self")
            if on_module and kind == "module" and getattr(site.method, "name", "") not in _INIT_METHODS:
                ctx.report(FIXED_DEVICE, call,
                           ".cpu() moves the module to the CPU while the Trainer runs it on its accelerator; "
                           "let the Trainer place the module (Trainer(accelerator='cpu') for CPU runs).")
            continue
        if isinstance(func, ast.Attribute) and func.attr == "to":
            device = call.args[0] if call.args else next(
                (k.value for k in call.keywords if k.arg == "device"), None)
            if device is not None and _cuda_literal(ctx, device):
                span = ctx.span(call)
                only = len(call.args) + len(call.keywords) == 1
                if target == "remove" and only:
                    fixes = [Fix("drop_method_call", "Remove .to(...) (the Trainer moves it)", {"span": span})]
                elif target == "self.device":
                    fixes = [Fix("replace_expr", "Use self.device", {"span": ctx.span(device),
                                                                      "text": "self.device"})]
                else:
                    fixes = []
                ctx.report(FIXED_DEVICE, call,
                           "Moving to a fixed 'cuda' device breaks Trainer(accelerator=...); "
                           + ("use self.device." if target == "self.device" else "the Trainer moves it."), fixes)
            continue
        for kw in call.keywords:
            if kw.arg == "device" and _cuda_literal(ctx, kw.value):
                span = ctx.span(call)
                if target == "remove":
                    fixes = [Fix("drop_keyword", "Remove device= (the Trainer moves the module)",
                                 {"span": span, "keyword": "device"})]
                    hint = "drop it: the Trainer moves the module's tensors"
                else:
                    fixes = [Fix("replace_expr", "Use device=self.device",
                                 {"span": ctx.span(kw.value), "text": "self.device"})]
                    hint = "use device=self.device"
                ctx.report(FIXED_DEVICE, kw.value,
                           f"device='cuda' pins this tensor to the GPU and breaks Trainer(accelerator=...); {hint}.",
                           fixes)


@checks(REDUNDANT_MODE)
def check_redundant_modes(ctx: Context) -> None:
    for site in ctx.scan.calls:
        func = site.call.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("eval", "train")
                and isinstance(func.value, ast.Name) and func.value.id == "self"):
            continue
        name = getattr(site.method, "name", None)
        if name is None or ctx.class_kind(site.cls) != "module":
            continue
        remove = [Fix("remove_statement", f"Remove self.{func.attr}()", {"span": ctx.span(site.call)})]
        if func.attr == "eval" and not site.call.args and name in EVAL_MODE_HOOKS:
            ctx.report(REDUNDANT_MODE, site.call,
                       f"The Trainer already puts the module in eval mode before `{name}`; remove self.eval().",
                       remove)
        elif func.attr == "train" and name in TRAIN_MODE_HOOKS and (
                not site.call.args or (isinstance(site.call.args[0], ast.Constant) and site.call.args[0].value)):
            ctx.report(REDUNDANT_MODE, site.call,
                       f"The Trainer already puts the module in train mode before `{name}`; remove self.train().",
                       remove)
    for with_node, cls, method in ctx.scan.withs:
        name = getattr(method, "name", None)
        if name not in EVAL_MODE_HOOKS or ctx.class_kind(cls) != "module":
            continue
        for item in with_node.items:
            expr = item.context_expr
            if isinstance(expr, ast.Call) and (ctx.qualify(expr.func) or "").split(".")[-1] in _GRAD_OFF \
                    and (ctx.qualify(expr.func) or "").startswith("torch"):
                fixes = [Fix("unwrap_with", f"Remove the `with {ctx.qualify(expr.func)}()` block (keep its body)",
                             {"span": ctx.span(expr)})] if len(with_node.items) == 1 else []
                ctx.report(REDUNDANT_MODE, expr,
                           f"The Trainer already disables gradients around `{name}`; remove this "
                           f"`with {ctx.qualify(expr.func)}()` block.", fixes)
    for cls, _res in ctx.classes_of("module"):
        for name, fn in cls.methods.items():
            if name not in EVAL_MODE_HOOKS:
                continue
            for dec in fn.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                q = ctx.qualify(target) or ""
                if q.startswith("torch") and q.split(".")[-1] in _GRAD_OFF:
                    ctx.report(REDUNDANT_MODE, dec,
                               f"The Trainer already disables gradients around `{name}`; remove @{q}.",
                               [Fix("remove_decorator", f"Remove @{q}", {"span": ctx.span(dec)})])
