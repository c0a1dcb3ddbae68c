"""The one place that calls hooks: datamodule, callbacks and module, in the catalog's documented order.

`HOOK_POINTS` in the catalog declares, per hook point, who is called and in which order. The table of
bound methods is computed once per entry point (`bind`), keeping only hooks that are overridden, so a
hook point nobody implements costs one dictionary lookup. Names the catalog does not declare are errors.

Besides hook points (`call`), the dispatcher runs the module's own methods (`call_module`: steps,
optimizer and dataloader hooks, checked against the catalog's module hooks), the DataModule's dataloader
hooks (`call_datamodule`), the batch-transfer chain (`transfer_batch`), and the checkpoint state of
callbacks and DataModule (`collect_states`, `load_callback_states`, `load_datamodule_state`). Every call sets the `self.log` context.

Hook points the catalog marks `strategy` end with the strategy's own lifecycle hook (on_train_start,
on_train_batch_start, ...), called only when the strategy overrides it.

With a profiler (`Trainer(profiler=...)`), `bind` wraps every call in a timed action named as Lightning
names it (the strategy's under `[Strategy]<its class>.`), and calls every implementer, overridden or not,
as Lightning does; without one nothing is wrapped, so a run without a profiler pays nothing for it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from torchbolt.catalog import HOOK_POINTS, HOOKS_BY_OWNER, REMOVED_HOOKS

if TYPE_CHECKING:
    import torch

    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

_MISSING = object()

#: Module methods `call_module` may run: the catalog's module hooks plus the 1.x epoch-end hooks still honoured.
_MODULE_CALLABLE: frozenset[str] = frozenset(HOOKS_BY_OWNER["module"]) | frozenset(
    name for name in REMOVED_HOOKS if name.endswith("_epoch_end")
)
_DATAMODULE_CALLABLE: frozenset[str] = frozenset(HOOKS_BY_OWNER["datamodule"])
#: The batch-transfer hooks, in the order they run on every batch.
BATCH_TRANSFER_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")


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


class UnknownHookError(KeyError):
    """A hook point or module hook name that the catalog does not declare (a runtime bug, not user error)."""


# (kind, bound method): kind 0 = callback (called with trainer and module first), 1 = module, 2 = datamodule,
# 3 = strategy.
_Call = tuple[int, Callable[..., Any]]
_CALLBACK, _MODULE, _DATAMODULE, _STRATEGY = 0, 1, 2, 3
_PART = {"callbacks": _CALLBACK, "module": _MODULE, "datamodule": _DATAMODULE, "strategy": _STRATEGY}


def _unknown(name: str, where: str) -> UnknownHookError:
    return UnknownHookError(
        f"{where} {name!r} is not declared in torchbolt.catalog; declare it there (HOOK_POINTS or the module "
        "hooks) before calling it."
    )


class HookDispatcher:
    """Calls hook points in order; see the module docstring."""

    def __init__(self, trainer: Trainer, ctx: RunContext) -> None:
        self._trainer = trainer
        self._ctx = ctx
        #: the hook context the dispatcher sets (loops that inline a default hook body set it the same way)
        self.ctx = ctx
        self._table: dict[str, tuple[_Call, ...]] = {}
        # per hook point, one callable running the whole table entry (see _sequence): what `call` runs
        self._runners: dict[str, Callable[..., Any]] = {}
        #: per hook point, a callable doing what `call(name, *args)` does, for the loops' per-step hooks.
        #: Where every implementer is a base-class default (only with a profiler, which calls them all) it
        #: is the runner itself: no user code runs, so nothing can `self.log` and the context `call` sets
        #: is not needed, and the loop saves `call`'s frame; otherwise `call` bound to the name.
        self.callers: dict[str, Callable[..., Any]] = self._make_callers(set(), {})
        self._module: LightningModule | None = None
        self._datamodule: LightningDataModule | None = None
        self._callbacks: tuple[Callback, ...] = ()
        self._transfer: tuple[tuple[str, Callable[..., Any]], ...] = ()
        # with a profiler: the chain's hooks after on_before_batch_transfer, and them timed as a whole
        self._transfer_before: tuple[tuple[str, Callable[..., Any]], ...] = ()
        self._transfer_on_device: tuple[tuple[str, Callable[..., Any]], ...] = ()
        self._timed_on_device: Callable[..., Any] = self._transfer_chain
        # Set by bind() when the Trainer has a profiler; None keeps every call free of profiling.
        self._profiler: Any = None
        self._module_prefix = ""
        # with a profiler, per module method `call_module` may run: the profiler's timer for it, or None when
        # it is not timed on its own; None without a profiler
        self._module_timers: dict[str, Callable[..., Any] | None] | None = None
        self._timers: dict[str, Callable[..., Any]] = {}
        #: the actions the loops time around backward and the batch transfer, named after the strategy, and
        #: their timers (see `timer`; None without a profiler)
        self.backward_action = self.batch_to_device_action = ""
        self.backward_timer: Callable[..., Any] | None = None
        #: `transfer_batch(batch, device, dataloader_idx)`: on_before_batch_transfer, transfer_batch_to_device,
        #: on_after_batch_transfer (those that run). With a profiler the last two are timed together as the
        #: strategy's batch_to_device, which is what Lightning's strategy runs; the first one runs before it,
        #: timed on its own. Bound per entry point: no call level of its own on every batch.
        self.transfer_batch: Callable[[Any, torch.device, int], Any] = self._transfer_chain

    def bind(
        self,
        module: LightningModule | None,
        datamodule: LightningDataModule | None,
        callbacks: Sequence[Callback],
        move_batches: bool = False,
    ) -> None:
        """Compute, for every hook point, the overridden hooks to call, in the documented order.

        `move_batches`: the default `transfer_batch_to_device` must run (the device is not the CPU).
        """
        from torchbolt.callbacks.callback import Callback
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule
        from torchbolt.strategies.strategy import Strategy

        self._module = module
        self._datamodule = datamodule
        self._callbacks = tuple(callbacks)
        profiler = self._profiler = getattr(self._trainer, "_active_profiler", None)
        self._timers = {}
        self._module_prefix = f"[LightningModule]{type(module).__name__}." if module is not None else ""
        strategy = getattr(self._trainer, "strategy", None)
        strategy_prefix = f"[Strategy]{type(strategy).__name__}."
        module_actions = {name: None if name == "backward" else strategy_prefix + name
                          for name in _STRATEGY_RUN_METHODS}
        self._module_timers = None if profiler is None else {
            name: None if module_actions.get(name, "") is None
            else self.timer(module_actions.get(name) or self._module_prefix + name)
            for name in sorted(_MODULE_CALLABLE)
        }
        self.backward_action = strategy_prefix + "backward"
        self.batch_to_device_action = strategy_prefix + "batch_to_device"
        self.backward_timer = self.timer(self.backward_action) if profiler is not None else None
        table: dict[str, tuple[_Call, ...]] = {}
        with_user_code: set[str] = set()  # hook points where an implementer is not a base-class default

        def overridden(obj: Any, name: str, base: type) -> bool:
            if is_overridden(obj, name, base):
                with_user_code.add(name)
                return True
            return False

        for name, point in HOOK_POINTS.items():
            if point.per_owner_state:
                continue  # collect_states / load_*_state(s)
            dm_calls: list[_Call] = []
            if point.datamodule and datamodule is not None and (
                    overridden(datamodule, name, LightningDataModule) or _always(profiler, "datamodule", name)):
                fn = getattr(datamodule, name)
                if profiler is not None:
                    fn = self._timed(f"[LightningDataModule]{type(datamodule).__name__}.{name}", fn)
                dm_calls.append((_DATAMODULE, fn))
            plain_cbs: list[_Call] = []
            monitoring_cbs: list[_Call] = []
            if point.callbacks:
                for cb in callbacks:
                    if overridden(cb, name, Callback) or _always(profiler, "callback", name):
                        target = monitoring_cbs if point.monitoring_last and getattr(cb, "_monitoring", False) \
                            else plain_cbs
                        fn = getattr(cb, name)
                        if profiler is not None:
                            fn = self._timed(f"[Callback]{cb.state_key}.{name}", fn)
                        target.append((_CALLBACK, fn))
            mod_calls: list[_Call] = []
            if point.module and module is not None and (
                    overridden(module, name, LightningModule) or _always(profiler, "module", name)):
                fn = getattr(module, name)
                if profiler is not None:
                    fn = self._timed(self._module_prefix + name, fn)
                mod_calls.append((_MODULE, fn))
            if point.module_first:
                ordered = mod_calls + plain_cbs + monitoring_cbs
            else:
                ordered = plain_cbs + mod_calls + monitoring_cbs
            ordered = dm_calls + ordered if point.datamodule_first else ordered + dm_calls
            if point.strategy and strategy is not None and (
                    overridden(strategy, name, Strategy) or profiler is not None):
                fn = getattr(strategy, name)
                if profiler is not None:
                    fn = self._timed(strategy_prefix + name, fn)
                ordered.append((_STRATEGY, fn))
            if ordered:
                table[name] = tuple(ordered)
        self._table = table
        trainer = self._trainer
        self._runners = {name: _sequence(calls, trainer, module) for name, calls in table.items()}
        self.callers = self._make_callers(with_user_code, self._runners)
        # Batch transfer: the DataModule's override wins over the module's; defaults only when they move data.
        chain: list[tuple[str, Callable[..., Any]]] = []
        for name in BATCH_TRANSFER_HOOKS:
            if is_overridden(datamodule, name, LightningDataModule):
                fn = getattr(datamodule, name)
                if profiler is not None:
                    fn = self._timed(f"[LightningDataModule]{type(datamodule).__name__}.{name}", fn)
                chain.append((name, fn))
            elif is_overridden(module, name, LightningModule) or (name == "transfer_batch_to_device" and move_batches) \
                    or (profiler is not None and module is not None):
                # with a profiler the module's defaults run too (Lightning calls and times them on every batch)
                fn = getattr(module, name)
                if profiler is not None:
                    fn = self._timed(self._module_prefix + name, fn)
                chain.append((name, fn))
        self._transfer = tuple(chain)
        if profiler is None:
            self.transfer_batch = self._transfer_chain
        else:
            self._transfer_before = tuple(c for c in chain if c[0] == "on_before_batch_transfer")
            self._transfer_on_device = tuple(c for c in chain if c[0] != "on_before_batch_transfer")
            self._timed_on_device = self._timed(self.batch_to_device_action, self._chain_on_device)
            self.transfer_batch = self._profiled_transfer

    def _make_callers(self, with_user_code: set[str],
                      runners: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
        """`callers` (see __init__) for the runners of a binding."""
        return {
            name: runners[name] if name in runners and name not in with_user_code else partial(self.call, name)
            for name, point in HOOK_POINTS.items() if not point.per_owner_state
        }

    def has(self, name: str) -> bool:
        """Whether anybody implements hook point `name` (lets the loop skip building arguments)."""
        if name in self._table:
            return True
        if name not in HOOK_POINTS:
            raise _unknown(name, "Hook point")
        return False

    def call(self, name: str, *args: Any) -> Any:
        """Run hook point `name`: each implementer in order, with `self.log` context set to `name`.

        Returns what the module's hook returned (None when the module does not implement it).
        """
        run = self._runners.get(name)
        if run is None:
            if name not in HOOK_POINTS or HOOK_POINTS[name].per_owner_state:
                raise _unknown(name, "Hook point")
            return None
        ctx = self._ctx
        prev = ctx.fx
        ctx.fx = name
        try:
            return run(*args)
        finally:
            ctx.fx = prev

    def call_part(self, name: str, part: str, *args: Any) -> Any:
        """Run only the `part` ("callbacks", "module", "datamodule" or "strategy") of hook point `name`.

        Checkpoint restore needs this: the module's `on_load_checkpoint` runs before the weights are
        loaded, the callbacks' after them (reference §2.5).
        """
        if name not in HOOK_POINTS:
            raise _unknown(name, "Hook point")
        kind = _PART[part]
        calls = tuple(c for c in self._table.get(name, ()) if c[0] == kind)
        return self._run(name, calls, args) if calls else None

    def _run(self, name: str, calls: tuple[_Call, ...], args: tuple[Any, ...]) -> Any:
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
        timers = self._module_timers
        if timers is None:
            if name not in _MODULE_CALLABLE:
                raise _unknown(name, "Module hook")
            ctx = self._ctx
            prev = ctx.fx
            ctx.fx = name
            try:
                return getattr(self._module, name)(*args, **kwargs)
            finally:
                ctx.fx = prev
        # with a profiler: the timers' keys are the callable names (one lookup checks and finds)
        try:
            run = timers[name]
        except KeyError:
            raise _unknown(name, "Module hook") from None
        ctx = self._ctx
        prev = ctx.fx
        ctx.fx = name
        try:
            # the method is looked up on every call (a user may replace it), the timer once per entry point
            method = getattr(self._module, name)
            if run is None:
                return method(*args, **kwargs)
            return run(partial(method, **kwargs) if kwargs else method, *args)
        finally:
            ctx.fx = prev

    def call_datamodule(self, name: str, *args: Any) -> Any:
        """Call the DataModule's hook `name` (its dataloader hooks) and return its result."""
        if name not in _DATAMODULE_CALLABLE:
            raise _unknown(name, "DataModule hook")
        ctx = self._ctx
        prev = ctx.fx
        ctx.fx = name
        try:
            profiler = self._profiler
            if profiler is None:
                return getattr(self._datamodule, name)(*args)
            with profiler.profile(f"[LightningDataModule]{type(self._datamodule).__name__}.{name}"):
                return getattr(self._datamodule, name)(*args)
        finally:
            ctx.fx = prev

    # -- batches ----------------------------------------------------------------------------------
    @property
    def transfers_batches(self) -> bool:
        """Whether any batch-transfer hook runs (False on CPU with no override: batches pass untouched)."""
        return bool(self._transfer)

    @property
    def module_timers(self) -> Mapping[str, Callable[..., Any] | None] | None:
        """With a profiler, per module method: the timer `call_module` runs it under (None: not timed on
        its own, e.g. backward inside the strategy's); None without a profiler."""
        return self._module_timers

    @property
    def profiler(self) -> Any:
        """The profiler the calls are timed with, or None (the loops time their own steps with it)."""
        return self._profiler

    def timer(self, action: str) -> Callable[..., Any]:
        """The profiler's `run(fn, *args)` for `action` (see `Profiler.timer`), made once per entry
        point; only valid while a profiler is bound."""
        run = self._timers.get(action)
        if run is None:
            run = self._timers[action] = self._profiler.timer(action)
        return run

    def _timed(self, action: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, timed as `action` (bound once per entry point, so a run without a profiler pays nothing).

        A partial of the timer rather than a closure around start/stop: the partial adds no Python frame.
        """
        return partial(self.timer(action), fn)

    def _transfer_chain(self, batch: Any, device: torch.device, dataloader_idx: int,
                        chain: tuple[tuple[str, Callable[..., Any]], ...] | None = None) -> Any:
        ctx = self._ctx
        prev = ctx.fx
        try:
            # the context names each hook while it runs; nothing else runs between them (runs every batch)
            for name, fn in self._transfer if chain is None else chain:
                ctx.fx = name
                if name == "transfer_batch_to_device":
                    batch = fn(batch, device, dataloader_idx)
                else:
                    batch = fn(batch, dataloader_idx)
        finally:
            ctx.fx = prev
        return batch

    def _profiled_transfer(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        if self._transfer_before:
            batch = self._transfer_chain(batch, device, dataloader_idx, self._transfer_before)
        return self._timed_on_device(batch, device, dataloader_idx)

    def _chain_on_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return self._transfer_chain(batch, device, dataloader_idx, self._transfer_on_device)

    # -- checkpoint state ---------------------------------------------------------------------------
    def collect_states(self, callbacks: bool = True) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(non-empty callback states by `state_key`, the DataModule's state or None) for a checkpoint;
        `callbacks=False` (weights-only files) asks only the DataModule."""
        ctx = self._ctx
        prev, ctx.fx = ctx.fx, "state_dict"
        try:
            states: dict[str, Any] = {}
            for callback in self._callbacks if callbacks else ():
                state = callback.state_dict()
                if state:
                    states[callback.state_key] = state
            dm = self._datamodule
            return states, (dm.state_dict() or None) if dm is not None else None
        finally:
            ctx.fx = prev

    def load_datamodule_state(self, state: Any | None) -> None:
        """Give the DataModule the state saved under its class name (nothing when absent)."""
        dm = self._datamodule
        if dm is None or state is None:
            return
        ctx = self._ctx
        prev, ctx.fx = ctx.fx, "load_state_dict"
        try:
            dm.load_state_dict(state)
        finally:
            ctx.fx = prev

    def load_callback_states(self, states: dict[str, Any]) -> None:
        """Give each callback its saved state (found by `state_key`, else by its legacy key)."""
        ctx = self._ctx
        prev, ctx.fx = ctx.fx, "load_state_dict"
        try:
            for callback in self._callbacks:
                state = states.get(callback.state_key)
                if state is None:
                    legacy_key = callback._legacy_state_key
                    state = states.get(legacy_key) if legacy_key else None
                if state:
                    callback.load_state_dict(copy.deepcopy(state))
        finally:
            ctx.fx = prev


#: Lightning's strategy runs the step methods, so they are timed under the strategy's name; `backward` is
#: timed by the loop around the backward hooks (as Lightning's strategy does), not on its own.
_STRATEGY_RUN_METHODS = ("training_step", "validation_step", "test_step", "predict_step", "backward")
#: Actions the loops record, under Lightning's names (with "run_training_epoch" and "run_training_batch").
TRAIN_NEXT_ACTION = "[_TrainingEpochLoop].train_dataloader_next"
EVAL_NEXT_ACTIONS = {"sanity_check": "[_EvaluationLoop].val_next", "validate": "[_EvaluationLoop].val_next",
                     "test": "[_EvaluationLoop].test_next"}
PREDICT_NEXT_ACTION = "[_PredictionLoop].predict_next"


def _sequence(calls: tuple[_Call, ...], trainer: Trainer, module: LightningModule | None) -> Callable[..., Any]:
    """One callable running a hook point's implementers in order and returning the module's result.

    A hook point only the module implements is its (timed) method itself: no loop, no extra call.
    """
    if len(calls) == 1 and calls[0][0] == _MODULE:
        return calls[0][1]
    fns = tuple(partial(fn, trainer, module) if kind == _CALLBACK else fn for kind, fn in calls)
    module_pos = next((i for i, (kind, _) in enumerate(calls) if kind == _MODULE), -1)
    before, module_fn, after = (fns, None, ()) if module_pos < 0 else \
        (fns[:module_pos], fns[module_pos], fns[module_pos + 1:])

    def run(*args: Any) -> Any:
        for fn in before:
            fn(*args)
        result = None if module_fn is None else module_fn(*args)
        for fn in after:
            fn(*args)
        return result

    return run


def _always(profiler: Any, owner: str, name: str) -> bool:
    """With a profiler, Lightning calls (and times) a hook even when it is not overridden, except the hooks
    the catalog marks as called only when overridden (prepare_data)."""
    if profiler is None:
        return False
    hook = HOOKS_BY_OWNER[owner].get(name)
    return hook is None or not hook.only_if_overridden


def fetch(iterator: Any, profiler: Any, action: str) -> Any:
    """`next(iterator)`, timed as `action` when there is a profiler."""
    if profiler is None:
        return next(iterator)
    profiler.start(action)
    try:
        return next(iterator)
    finally:
        profiler.stop(action)
