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
from torch.optim.optimizer import (
    _global_optimizer_pre_hooks as _global_step_pre_hooks,  # a dict torch mutates
)

from torchbolt.loops._common import split_training_output
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.optimizer import LightningOptimizer
    from torchbolt.loops.context import Loops


#: torch optimizers whose `step(closure)` runs the closure once, under enable_grad, before anything else: for
#: these, running the closure and then `step()` is the same update (see Optimization._plain_stepper)
_CLOSURE_FIRST = frozenset({
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam,
    torch.optim.RMSprop, torch.optim.Adagrad, torch.optim.Adadelta, torch.optim.ASGD, torch.optim.Rprop,
    torch.optim.SparseAdam,
})


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
    def automatic_stepper(self) -> Callable[[tuple[Any, ...], int], dict[str, Any] | None]:
        """The automatic step for the coming epoch: `automatic_step`, or where the step is the plain one
        (see `_plain_stepper`) a step with the epoch's constants bound once."""
        loops = self._loops
        trainer = loops.trainer
        plan = loops.plan
        if not (trainer.accumulate_grad_batches == 1 and not loops.fit.skip_backward
                and len(trainer.optimizers) == 1 and self.lightning_optimizers):
            return self.automatic_step
        if (plan.direct_step and plan.precision_noop and plan.profiler is None and not plan.before_zero_grad
                and not trainer.gradient_clip_val):
            return self._plain_stepper()
        if plan.profiler is not None and self._default_step_chain():
            return self._timed_plain_stepper()
        return self.automatic_step

    def _default_step_chain(self) -> bool:
        """Whether everything between the optimization loop and torch's `optimizer.step` is torchbolt's own
        default: the module's optimizer_step / optimizer_zero_grad / backward / configure_gradient_clipping,
        the LightningOptimizer, the strategy's and the plain precision plugin's optimizer_step and backward."""
        from torchbolt.core.module import LightningModule
        from torchbolt.core.optimizer import LightningOptimizer
        from torchbolt.plugins.precision import Precision
        from torchbolt.strategies.strategy import Strategy
        from torchbolt.trainer.dispatch import is_overridden

        loops = self._loops
        trainer = loops.trainer
        plan = loops.plan
        module = trainer.lightning_module
        strategy = trainer.strategy
        lightning_optimizer = self.lightning_optimizers[0]
        return (
            plan.automatic and plan.precision_noop and not plan.clip_overridden and module is not None
            and loops.hooks.module_timers is not None
            and not any(is_overridden(module, name, LightningModule)
                        for name in ("optimizer_step", "optimizer_zero_grad", "backward", "configure_gradient_clipping"))
            and type(strategy).optimizer_step is Strategy.optimizer_step
            and type(strategy).backward is Strategy.backward
            and type(strategy.precision_plugin) is Precision
            and type(lightning_optimizer).step is LightningOptimizer.step and "step" not in vars(lightning_optimizer)
            and lightning_optimizer._step_runner == self.optimizer_step
            and lightning_optimizer._on_before_step is None and lightning_optimizer._on_after_step is None
            and lightning_optimizer._optimizer is trainer.optimizers[0]
        )

    def _timed_plain_stepper(self) -> Callable[[tuple[Any, ...], int], dict[str, Any] | None]:
        """`automatic_step` with a profiler, where every step method is the default (`_default_step_chain`),
        bound once per epoch.

        It times the same actions, in the same nesting and order, as the general path: the module's
        optimizer_step around torch's `step(closure)`; inside the closure the strategy's training_step, the
        zero_grad hooks and the strategy's backward with its hooks; then on_before_optimizer_step and
        configure_gradient_clipping. What it leaves out is the call chain between them (the module's
        default optimizer_step, the LightningOptimizer, the strategy and precision plugin passing the
        closure along), whose bodies only forward the call. As with `_plain_stepper`, each step checks
        what a callback may change between batches and hands the batch to `automatic_step` if it did.
        """
        loops = self._loops
        trainer = loops.trainer
        fit = loops.fit
        plan = loops.plan
        hooks = loops.hooks
        general = self.automatic_step
        module, ctx, optimizer, stepped, zero_grad_total, zero_grad_current, step_total, step_current = \
            self._epoch_bindings()
        timers = hooks.module_timers
        assert timers is not None
        timed_training_step = timers["training_step"]
        timed_zero_grad = timers["optimizer_zero_grad"]
        timed_optimizer_step = timers["optimizer_step"]
        timed_clipping = timers["configure_gradient_clipping"]
        timed_backward = hooks.backward_timer
        assert timed_training_step is not None and timed_zero_grad is not None and timed_backward is not None
        assert timed_optimizer_step is not None and timed_clipping is not None
        callers = hooks.callers
        before_zero_grad = callers["on_before_zero_grad"] if plan.before_zero_grad else None
        before_backward = callers["on_before_backward"]
        after_backward = callers["on_after_backward"]
        before_optimizer_step = callers["on_before_optimizer_step"] if plan.before_optimizer_step else None
        epoch = trainer.current_epoch  # fixed while the epoch's batches run
        is_grad_enabled = torch.is_grad_enabled
        batch_args: tuple[Any, ...] = ()
        batch_index = 0
        step_loss: Tensor | None = None
        step_extra: dict[str, Any] | None = None

        def backward(loss: Tensor) -> None:  # Optimization._backward_with_hooks for the default chain
            before_backward(loss)
            prev, ctx.fx = ctx.fx, "backward"
            try:
                module.backward(loss)
            finally:
                ctx.fx = prev
            after_backward()

        def closure() -> Tensor | None:
            nonlocal step_loss, step_extra
            if not is_grad_enabled():
                with torch.enable_grad():
                    return closure()
            prev, ctx.fx = ctx.fx, "training_step"
            try:
                out = timed_training_step(module.training_step, *batch_args)
            finally:
                ctx.fx = prev
            if type(out) is Tensor:
                loss = out
            else:
                loss, step_extra = split_training_output(out)
            step_loss = loss
            if before_zero_grad is not None:
                before_zero_grad(optimizer)
            zero_grad_total.ready += 1
            zero_grad_current.ready += 1
            zero_grad_total.started += 1
            zero_grad_current.started += 1
            ctx.fx = "optimizer_zero_grad"
            try:
                timed_zero_grad(module.optimizer_zero_grad, epoch, batch_index, optimizer)
            finally:
                ctx.fx = prev
            zero_grad_total.completed += 1
            zero_grad_current.completed += 1
            if loss is None:
                self._warn_none_once()
                return None
            timed_backward(backward, loss)
            step_loss = loss = loss.detach()
            return loss

        def closure_then_hooks() -> Tensor | None:
            result = closure()
            # Optimization.optimizer_step's after_closure: with a profiler, clipping is always called
            if before_optimizer_step is not None:
                before_optimizer_step(optimizer)
            prev, ctx.fx = ctx.fx, "configure_gradient_clipping"
            try:
                timed_clipping(module.configure_gradient_clipping, optimizer, trainer.gradient_clip_val,
                               trainer.gradient_clip_algorithm)
            finally:
                ctx.fx = prev
            return result

        def optimizer_step() -> None:  # the module's default optimizer_step, down to torch's
            stepped.step(closure=closure_then_hooks)

        def step(args: tuple[Any, ...], batch_idx: int) -> dict[str, Any] | None:
            nonlocal batch_args, batch_index, step_loss, step_extra
            if trainer.accumulate_grad_batches != 1 or fit.skip_backward or trainer.optimizers[0] is not optimizer:
                return general(args, batch_idx)
            batch_args = args
            batch_index = batch_idx
            step_loss = step_extra = None
            step_total.ready += 1
            step_current.ready += 1
            prev, ctx.fx = ctx.fx, "optimizer_step"
            try:
                timed_optimizer_step(optimizer_step)
            finally:
                ctx.fx = prev
                batch_args = ()
            step_total.completed += 1
            step_current.completed += 1
            loss = step_loss
            if loss is None:
                return {}
            return {"loss": loss, **step_extra} if step_extra else {"loss": loss}

        return step

    def _plain_stepper(self) -> Callable[[tuple[Any, ...], int], dict[str, Any] | None]:
        """`automatic_step` for the plan's direct case (no hook around the step, one optimizer, no precision
        plugin, profiler, accumulation or clipping), bound once per epoch.

        The general step looks up about twenty things and builds its closure on every batch; here the
        closure is made once and reads the batch from a cell. Each step still checks what a callback may
        change between batches (clipping, accumulation, the SWA forward-only epoch, the optimizer) and
        hands the batch to `automatic_step` when any of it changed. The order of calls, the progress
        counters and the `self.log` context are those of `automatic_step`.
        """
        loops = self._loops
        trainer = loops.trainer
        fit = loops.fit
        general = self.automatic_step
        module, ctx, optimizer, stepped, zero_grad_total, zero_grad_current, step_total, step_current = \
            self._epoch_bindings()
        is_grad_enabled = torch.is_grad_enabled
        # torch's own optimizers evaluate the closure once, under enable_grad, before updating: for them the
        # closure runs here and the optimizer steps without it (as a hand-written loop does), unless a step
        # pre-hook is registered (it must see the step before training_step runs, as in Lightning)
        closure_first = type(stepped) in _CLOSURE_FIRST and "step" not in vars(stepped)
        instance_pre_hooks = stepped._optimizer_step_pre_hooks if closure_first else None
        # The batch's output (the detached loss and the extras) goes to on_train_batch_end and the 1.x
        # training_epoch_end only; with neither, and an optimizer that ignores the closure's result, the
        # loss is not detached (a tensor op per step) and no output is built.
        plan = loops.plan
        wants_output = plan.train_batch_end or plan.collect_train_outputs
        batch_args: tuple[Any, ...] = ()  # the batch the closure trains on (set by each step)
        step_loss: Tensor | None = None
        step_extra: dict[str, Any] | None = None

        def closure() -> Tensor | None:
            nonlocal step_loss, step_extra
            if not is_grad_enabled():
                with torch.enable_grad():
                    return closure()
            prev, ctx.fx = ctx.fx, "training_step"
            try:
                out = module.training_step(*batch_args)
            finally:
                ctx.fx = prev
            if type(out) is Tensor:
                loss = out
            else:
                loss, step_extra = split_training_output(out)
            zero_grad_total.ready += 1
            zero_grad_current.ready += 1
            zero_grad_total.started += 1
            zero_grad_current.started += 1
            ctx.fx = "optimizer_zero_grad"
            try:
                optimizer.zero_grad()
            finally:
                ctx.fx = prev
            zero_grad_total.completed += 1
            zero_grad_current.completed += 1
            if loss is None:
                self._warn_none_once()
                return None
            ctx.fx = "backward"
            try:
                loss.backward()
            finally:
                ctx.fx = prev
            if direct_output:
                return None  # nobody reads the loss: neither the loop nor the optimizer (see above)
            step_loss = loss = loss.detach()
            return loss

        direct_output = False  # this step's output is not wanted (set per step, read by the closure)

        def step(args: tuple[Any, ...], batch_idx: int) -> dict[str, Any] | None:
            nonlocal batch_args, step_loss, step_extra, direct_output
            if (trainer.gradient_clip_val or trainer.accumulate_grad_batches != 1 or fit.skip_backward
                    or trainer.optimizers[0] is not optimizer):
                return general(args, batch_idx)
            batch_args = args
            step_loss = step_extra = None
            step_total.ready += 1
            step_current.ready += 1
            prev, ctx.fx = ctx.fx, "optimizer_step"
            try:
                if closure_first and not instance_pre_hooks and not _global_step_pre_hooks:
                    direct_output = not wants_output
                    closure()
                    stepped.step()
                else:
                    direct_output = False
                    stepped.step(closure=closure)
            finally:
                ctx.fx = prev
                batch_args = ()  # the batch is not kept alive until the next step
            step_total.completed += 1
            step_current.completed += 1
            if direct_output:
                return None
            loss = step_loss
            if loss is None:
                return {}
            return {"loss": loss, **step_extra} if step_extra else {"loss": loss}

        return step

    def _epoch_bindings(self) -> tuple[Any, ...]:
        """What both epoch-bound steps read on every batch: the module, the hook context, the optimizer
        (as `trainer.optimizers` has it, and the one the LightningOptimizer steps), and the zero_grad and
        step progress counters (total, current)."""
        loops = self._loops
        trainer = loops.trainer
        module = trainer.lightning_module
        assert module is not None
        progress = loops.state.fit.optim
        return (module, loops.hooks.ctx, trainer.optimizers[0], self.lightning_optimizers[0]._optimizer,
                progress.zero_grad.total, progress.zero_grad.current, progress.step.total, progress.step.current)

    def _warn_none_once(self) -> None:
        if not self._warned_none:
            self._warned_none = True
            warnings.warn(
                "`training_step` returned `None`; the optimizer step is skipped for that batch. If this was on "
                "purpose, ignore this warning.",
                stacklevel=3,
            )

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
            self._warn_none_once()
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
