"""One training step's optimization (reference §2.1 step 13): automatic, or manual by the user.

Automatic: `optimizer_step(closure)` where the closure runs training_step, zero_grad and backward.
Backward (`backward`) and the optimizer update (`optimizer_step`) each happen in one method here;
`LightningModule.manual_backward` and `LightningOptimizer.step` reach them too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from torchbolt.loops._common import split_training_output
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.optimizer import LightningOptimizer
    from torchbolt.loops.context import Loops


class Optimization:
    """Backward, optimizer step and the automatic / manual training step."""

    def __init__(self, loops: Loops) -> None:
        self._loops = loops
        self.lightning_optimizers: list[LightningOptimizer] = []
        self._warned_none = False

    # -- the one place backward runs ----------------------------------------------------------------
    def backward(self, loss: Tensor, optimizer: Any, *args: Any, **kwargs: Any) -> None:
        """on_before_backward, the module's backward hook, on_after_backward."""
        run = self._loops.hooks.backward_timer
        if run is None:
            self._backward_with_hooks(loss, args, kwargs)
        else:
            run(self._backward_with_hooks, loss, args, kwargs)  # Lightning's strategy times backward with its hooks

    def _backward_with_hooks(self, loss: Tensor, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hooks = self._loops.hooks
        hooks.callers["on_before_backward"](loss)
        # The precision plugin scales the loss ('16-mixed') between the hook and the backward pass.
        hooks.call_module("backward", self._loops.trainer.strategy.backward(loss), *args, **kwargs)
        hooks.callers["on_after_backward"]()

    # -- the one place the optimizer steps ----------------------------------------------------------
    def optimizer_step(self, optimizer: torch.optim.Optimizer, closure: Callable[[], Any], **kwargs: Any) -> Any:
        """optimizer.step with a closure that also runs on_before_optimizer_step and gradient clipping."""
        loops = self._loops
        trainer = loops.trainer
        hooks = loops.hooks
        plan = loops.plan
        # Lightning calls configure_gradient_clipping on every step; with a profiler it shows in the report
        clip = plan.automatic and (plan.clip_overridden or trainer.gradient_clip_val or plan.profiler is not None)
        strategy = trainer.strategy
        if not clip and not plan.before_optimizer_step:
            # Nothing to run between the closure and the update: the wrapper would only add a call.
            return strategy.optimizer_step(optimizer, closure, None, skip_if_no_loss=plan.automatic, **kwargs)

        def after_closure() -> None:
            # Gradients are unscaled by now ('16-mixed'): hooks and clipping see their true values.
            hooks.callers["on_before_optimizer_step"](optimizer)
            if clip:
                hooks.call_module(
                    "configure_gradient_clipping", optimizer, gradient_clip_val=trainer.gradient_clip_val,
                    gradient_clip_algorithm=trainer.gradient_clip_algorithm,
                )

        # The strategy's precision plugin runs closure -> after_closure -> update (GradScaler for '16-mixed').
        return strategy.optimizer_step(optimizer, closure, after_closure, skip_if_no_loss=plan.automatic, **kwargs)

    # -- automatic optimization ---------------------------------------------------------------------
    def automatic_step(self, args: tuple[Any, ...], batch_idx: int) -> dict[str, Any]:
        """training_step inside the optimizer closure, with zero_grad and backward (reference §2.1)."""
        loops = self._loops
        trainer = loops.trainer
        hooks = loops.hooks
        plan = loops.plan
        accumulate = trainer.accumulate_grad_batches
        optimizer = trainer.optimizers[0]
        # what the closure saw of training_step's output: the loss (detached after backward) and the extras
        step_loss: Tensor | None = None
        step_extra: dict[str, Any] = {}
        skip_backward = loops.fit.skip_backward
        zero_grad = batch_idx % accumulate == 0 and not skip_backward
        # the plan's direct path; clipping is read per step as callbacks may change it
        direct = plan.direct_step and not trainer.gradient_clip_val
        epoch = None if direct else trainer.current_epoch  # only the module's hooks take it; direct calls none
        precision_noop = plan.precision_noop and plan.profiler is None  # a profiler times the step method
        ctx = hooks.ctx
        module = trainer.lightning_module
        assert module is not None
        optim_progress = loops.state.fit.optim
        # The progress counters are bumped in place (total and current alike), not through
        # Progress.increment: a call per counter was about a fifth of the loop's own instructions per step.
        zero_grad_total = optim_progress.zero_grad.total
        zero_grad_current = optim_progress.zero_grad.current

        def closure() -> Tensor | None:
            nonlocal step_loss, step_extra
            if not torch.is_grad_enabled():
                # Grad mode is normally on already (torch's optimizers enable it around the closure);
                # entering torch.enable_grad() on every step would cost ~1 µs.
                with torch.enable_grad():
                    return closure()
            if precision_noop:
                # hooks.call_module("training_step", *args), inline: one call level less on every batch
                prev, ctx.fx = ctx.fx, "training_step"
                try:
                    out = module.training_step(*args)
                finally:
                    ctx.fx = prev
            elif plan.precision_noop:
                out = hooks.call_module("training_step", *args)  # run_step's body with no forward context
            else:
                out = loops.run_step("training_step", args)
            loss, extra = (out, {}) if type(out) is Tensor else split_training_output(out)
            if loss is not None and accumulate != 1:
                loss = loss / accumulate
            step_loss = loss
            step_extra = extra
            if zero_grad:
                if plan.before_zero_grad:
                    hooks.callers["on_before_zero_grad"](optimizer)
                zero_grad_total.ready += 1
                zero_grad_current.ready += 1
                zero_grad_total.started += 1
                zero_grad_current.started += 1
                if direct:
                    prev, ctx.fx = ctx.fx, "optimizer_zero_grad"
                    try:
                        optimizer.zero_grad()  # LightningModule.optimizer_zero_grad's body
                    finally:
                        ctx.fx = prev
                else:
                    hooks.call_module("optimizer_zero_grad", epoch, batch_idx, optimizer)
                zero_grad_total.completed += 1
                zero_grad_current.completed += 1
            if loss is not None:
                if skip_backward:
                    pass  # a forward-only pass (SWA's batch-norm epoch): the optimizer keeps its gradients
                elif direct:
                    prev, ctx.fx = ctx.fx, "backward"
                    try:
                        loss.backward()  # LightningModule.backward's body; no backward hooks to run around it
                    finally:
                        ctx.fx = prev
                else:
                    self.backward(loss, optimizer)
                # no clone: nothing writes into the loss in place (saves ~4 µs/step); one detached tensor
                # serves both the closure's result and the batch outputs
                step_loss = loss.detach()
                return step_loss
            if not self._warned_none:
                self._warned_none = True
                warnings.warn(
                    "`training_step` returned `None`; the optimizer step is skipped for that batch. If this was on "
                    "purpose, ignore this warning.",
                    stacklevel=2,
                )
            return None

        # should_accumulate() is always False without accumulation; skip the call (this runs every batch)
        if accumulate != 1 and loops.fit.should_accumulate():
            # A micro-batch that does not step keeps its gradients local (DDP: no all-reduce); the stepping
            # batch reduces the accumulated sum once. Forward and backward both run inside the context.
            with trainer.strategy.no_backward_sync(module):
                closure()
        else:
            step_total = optim_progress.step.total
            step_current = optim_progress.step.current
            step_total.ready += 1
            step_current.ready += 1
            lightning_optimizer = self.lightning_optimizers[0]
            if direct:
                # What LightningModule.optimizer_step -> LightningOptimizer.step -> optimizer_step amount to
                # with no hook or clipping: the wrapped optimizer's step with the closure.
                prev, ctx.fx = ctx.fx, "optimizer_step"
                try:
                    lightning_optimizer._optimizer.step(closure=closure)
                finally:
                    ctx.fx = prev
            else:
                hooks.call_module("optimizer_step", epoch, batch_idx, lightning_optimizer, closure)
            step_total.completed += 1
            step_current.completed += 1
        if step_loss is None:
            return {}
        return {"loss": step_loss, **step_extra} if step_extra else {"loss": step_loss}

    # -- manual optimization ------------------------------------------------------------------------
    def manual_step(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """training_step under manual optimization: the user calls backward and optimizer steps."""
        out = self._loops.run_step("training_step", args)
        if isinstance(out, dict):
            result = dict(out)
        elif isinstance(out, Tensor):
            result = {"loss": out}
        elif out is None:
            result = {}
        else:
            raise MisconfigurationException(
                "In manual optimization, `training_step` must either return a Tensor or have no return "
                f"(got {type(out).__name__})."
            )
        if "loss" in result and isinstance(result["loss"], Tensor):
            result["loss"] = result["loss"].detach()
        return result
