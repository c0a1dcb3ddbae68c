"""The one place that calls hooks: datamodule, callbacks and module, in the catalog's documented order.

`HOOK_POINTS` in the catalog declares, per hook point, who is called and in which order. The table of
bound methods is computed once per entry point, keeping only hooks that are overridden, so a hook
point nobody implements costs one dictionary lookup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from torchbolt.catalog import HOOK_POINTS

if TYPE_CHECKING:
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

_MISSING = object()


class RunContext:
    """Per-call context read by `self.log`: the hook being run. A plain object, so writes are cheap."""

    __slots__ = ("fx",)

    def __init__(self) -> None:
        self.fx: str | None = None


def is_overridden(obj: Any, name: str, base: type) -> bool:
    """True when `obj` provides its own `name` (on its class or instance) instead of `base`'s default."""
    if obj is None:
        return False
    inst = getattr(obj, "__dict__", {}).get(name, _MISSING)
    if inst is not _MISSING:
        return callable(inst)
    attr = getattr(type(obj), name, None)
    if attr is None or not callable(attr):
        return False
    return attr is not getattr(base, name, None)


# (kind, bound method): kind 0 = callback (called with trainer and module first), 1 = module, 2 = datamodule.
_Call = tuple[int, Callable[..., Any]]
_CALLBACK, _MODULE, _DATAMODULE = 0, 1, 2


class HookDispatcher:
    """Calls hook points in order; see the module docstring."""

    def __init__(self, trainer: Trainer, ctx: RunContext) -> None:
        self._trainer = trainer
        self._ctx = ctx
        self._table: dict[str, tuple[_Call, ...]] = {}
        self._module: LightningModule | None = None
        # Set by bind() when the Trainer has a profiler; None keeps every call free of profiling.
        self._profiler: Any = None
        self._module_prefix = ""

    def bind(
        self,
        module: LightningModule | None,
        datamodule: LightningDataModule | None,
        callbacks: Sequence[Callback],
    ) -> None:
        """Compute, for every hook point, the overridden hooks to call, in the documented order."""
        from torchbolt.callbacks.callback import Callback
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        self._module = module
        # With a profiler, every implementer is called and timed, overridden or not, under Lightning's
        # action names ("[Callback]<state_key>.<hook>", "[LightningModule]<Class>.<hook>").
        profiler = self._profiler = getattr(self._trainer, "_active_profiler", None)
        self._module_prefix = f"[LightningModule]{type(module).__name__}." if module is not None else ""
        table: dict[str, tuple[_Call, ...]] = {}
        for name, point in HOOK_POINTS.items():
            dm_calls: list[_Call] = []
            if point.datamodule and datamodule is not None and (
                    profiler is not None or is_overridden(datamodule, name, LightningDataModule)):
                fn = getattr(datamodule, name)
                if profiler is not None:
                    fn = _timed(profiler, f"[LightningDataModule]{type(datamodule).__name__}.{name}", fn)
                dm_calls.append((_DATAMODULE, fn))
            plain_cbs: list[_Call] = []
            monitoring_cbs: list[_Call] = []
            if point.callbacks:
                for cb in callbacks:
                    if profiler is not None or is_overridden(cb, name, Callback):
                        target = monitoring_cbs if point.monitoring_last and getattr(cb, "_monitoring", False) \
                            else plain_cbs
                        fn = getattr(cb, name)
                        if profiler is not None:
                            fn = _timed(profiler, f"[Callback]{cb.state_key}.{name}", fn)
                        target.append((_CALLBACK, fn))
            mod_calls: list[_Call] = []
            if point.module and module is not None and (
                    profiler is not None or is_overridden(module, name, LightningModule)):
                fn = getattr(module, name)
                if profiler is not None:
                    fn = _timed(profiler, self._module_prefix + name, fn)
                mod_calls.append((_MODULE, fn))
            if point.module_first:
                ordered = mod_calls + plain_cbs + monitoring_cbs
            else:
                ordered = plain_cbs + mod_calls + monitoring_cbs
            ordered = dm_calls + ordered if point.datamodule_first else ordered + dm_calls
            if ordered:
                table[name] = tuple(ordered)
        self._table = table

    def has(self, name: str) -> bool:
        """Whether anybody implements hook point `name` (lets the loop skip building arguments)."""
        return name in self._table

    def call(self, name: str, *args: Any) -> Any:
        """Run hook point `name`: each implementer in order, with `self.log` context set to `name`.

        Returns what the module's hook returned (None when the module does not implement it).
        """
        calls = self._table.get(name)
        if calls is None:
            return None
        ctx = self._ctx
        prev = ctx.fx
        ctx.fx = name
        trainer = self._trainer
        module = self._module
        result = None
        try:
            for kind, fn in calls:
                if kind == _CALLBACK:
                    fn(trainer, module, *args)
                elif kind == _MODULE:
                    result = fn(*args)
                else:
                    fn(*args)
        finally:
            ctx.fx = prev
        return result

    def call_module(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the module's own hook or method `name` (overridden or default) and return its result."""
        ctx = self._ctx
        prev = ctx.fx
        ctx.fx = name
        try:
            profiler = self._profiler
            if profiler is None:
                return getattr(self._module, name)(*args, **kwargs)
            action = _MODULE_ACTIONS.get(name, self._module_prefix + name)
            if action is None:
                return getattr(self._module, name)(*args, **kwargs)
            with profiler.profile(action):
                return getattr(self._module, name)(*args, **kwargs)
        finally:
            ctx.fx = prev

    def profile(self, action: str) -> Any:
        """A context timing `action` with the Trainer's profiler (a no-op context without one)."""
        profiler = self._profiler
        return profiler.profile(action) if profiler is not None else contextlib.nullcontext()


#: Module calls that Lightning times under another name (its strategy runs the step methods), or not at
#: all (`backward` runs inside the strategy's timed backward, which the loop records).
STRATEGY = "[Strategy]SingleDeviceStrategy."
_MODULE_ACTIONS: dict[str, str | None] = {
    "training_step": STRATEGY + "training_step",
    "validation_step": STRATEGY + "validation_step",
    "test_step": STRATEGY + "test_step",
    "predict_step": STRATEGY + "predict_step",
    "backward": None,
}


#: Actions the loops record, under Lightning's names (`fetch` and `profiled_transfer` below, and the
#: loops' "run_training_epoch" / "run_training_batch").
TRAIN_NEXT_ACTION = "[_TrainingEpochLoop].train_dataloader_next"
EVAL_NEXT_ACTIONS = {"sanity_check": "[_EvaluationLoop].val_next", "validate": "[_EvaluationLoop].val_next",
                     "test": "[_EvaluationLoop].test_next"}
PREDICT_NEXT_ACTION = "[_PredictionLoop].predict_next"
BACKWARD_ACTION = STRATEGY + "backward"
_TRANSFER_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")


def fetch(iterator: Any, profiler: Any, action: str) -> Any:
    """`next(iterator)`, timed as `action` when there is a profiler."""
    if profiler is None:
        return next(iterator)
    profiler.start(action)
    try:
        return next(iterator)
    finally:
        profiler.stop(action)


def profiled_transfer(trainer: Trainer, profiler: Any, batch: Any, dataloader_idx: int) -> Any:
    """The batch-transfer path with a profiler: precision conversion and all three transfer hooks, each
    timed under Lightning's names inside "[Strategy]SingleDeviceStrategy.batch_to_device" (Lightning calls
    the module's default hooks too, so the names appear even when nobody overrides them)."""
    module = trainer.lightning_module
    ctx = trainer._ctx
    with profiler.profile(STRATEGY + "batch_to_device"):
        batch = trainer._precision.convert_input(batch)
        for name in _TRANSFER_HOOKS:
            owner = trainer._batch_hook_owner.get(name, module)
            kind = "LightningDataModule" if owner is not module else "LightningModule"
            args = (batch, trainer._device, dataloader_idx) if name == "transfer_batch_to_device" \
                else (batch, dataloader_idx)
            prev, ctx.fx = ctx.fx, name
            try:
                with profiler.profile(f"[{kind}]{type(owner).__name__}.{name}"):
                    batch = getattr(owner, name)(*args)
            finally:
                ctx.fx = prev
    return batch


def _timed(profiler: Any, action: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, timed as `action` (bound once per run, so a run without a profiler pays nothing)."""
    start, stop = profiler.start, profiler.stop

    def timed(*args: Any) -> Any:
        start(action)
        try:
            return fn(*args)
        finally:
            stop(action)

    return timed
