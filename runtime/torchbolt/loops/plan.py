"""The step plan: what each step of this run has to do, decided once before the loop starts.

A hand-written loop does forward, zero_grad, backward, step. The Trainer adds only what the user
asked for: hooks somebody overrides, batch transfer when a hook or the precision needs it, the full
optimizer path when a hook, clipping or a second optimizer sits around the step. `build_step_plan`
reads the bound dispatcher and the module once per entry point; the loops then branch on plain
booleans instead of asking on every batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from torchbolt.loops._common import takes_positional
from torchbolt.trainer.dispatch import is_overridden

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.dispatch import HookDispatcher
    from torchbolt.trainer.precision import Precision

STEP_METHODS = ("training_step", "validation_step", "test_step", "predict_step")


@dataclass(frozen=True)
class StepPlan:
    """Per-run facts the loops branch on (see the module docstring)."""

    automatic: bool  # automatic optimization
    transfer: bool  # batches go through precision conversion and/or batch-transfer hooks
    precision_noop: bool  # no dtype conversion, no autocast
    #: the module's default optimizer_step / optimizer_zero_grad / backward, one optimizer, no hook or
    #: clipping around them: the loop runs their bodies itself (gradient_clip_val is still read per step,
    #: since callbacks may change it)
    direct_step: bool
    clip_overridden: bool  # configure_gradient_clipping is the module's own
    before_optimizer_step: bool
    before_zero_grad: bool
    train_batch_start: bool
    train_batch_end: bool
    collect_train_outputs: bool  # the 1.x training_epoch_end(outputs) is defined
    #: whether each step method takes batch_idx (and dataloader_idx) after the batch
    takes_idx: Mapping[str, bool]

    def step_args(self, name: str, batch: object, batch_idx: int, dataloader_idx: int | None) -> tuple[object, ...]:
        """Positional arguments for a step method: batch, then batch_idx and dataloader_idx when accepted."""
        if not self.takes_idx[name]:
            return (batch,)
        if dataloader_idx is None:
            return (batch, batch_idx)
        return (batch, batch_idx, dataloader_idx)


def defines_legacy(module: LightningModule, name: str) -> bool:
    """Whether the module defines a 1.x hook that LightningModule no longer has (e.g. training_epoch_end)."""
    return callable(getattr(type(module), name, None)) or callable(module.__dict__.get(name))


def build_step_plan(module: LightningModule, hooks: HookDispatcher, precision: Precision,
                    optimizer_count: int) -> StepPlan:
    """Decide the plan for one entry point (after hooks are bound and optimizers configured)."""
    from torchbolt.core.module import LightningModule

    automatic = bool(module.automatic_optimization)
    clip_overridden = is_overridden(module, "configure_gradient_clipping", LightningModule)
    around_step = ("on_before_optimizer_step", "on_before_backward", "on_after_backward")
    direct = (
        automatic
        and precision.is_noop
        and not clip_overridden
        and optimizer_count == 1
        and not any(hooks.has(name) for name in around_step)
        and not any(is_overridden(module, name, LightningModule)
                    for name in ("optimizer_step", "optimizer_zero_grad", "backward"))
    )
    return StepPlan(
        automatic=automatic,
        transfer=hooks.transfers_batches or not precision.is_noop,
        precision_noop=precision.is_noop,
        direct_step=direct,
        clip_overridden=clip_overridden,
        before_optimizer_step=hooks.has("on_before_optimizer_step"),
        before_zero_grad=hooks.has("on_before_zero_grad"),
        train_batch_start=hooks.has("on_train_batch_start"),
        train_batch_end=hooks.has("on_train_batch_end"),
        collect_train_outputs=defines_legacy(module, "training_epoch_end"),
        takes_idx=MappingProxyType({name: takes_positional(getattr(module, name), 2) for name in STEP_METHODS}),
    )
