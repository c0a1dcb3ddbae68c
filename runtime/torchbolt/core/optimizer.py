"""configure_optimizers parsing, LR scheduler configs, and the optimizer wrapper handed to user code."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
from torch.optim import Optimizer

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.catalog import LR_SCHEDULER_CONFIG_KEYS
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule

_UNKNOWN_SHAPE = (
    "configure_optimizers() returned {what}, which is not a supported shape. Return one of: an Optimizer; "
    "a list of Optimizers; ([Optimizer, ...], [LRScheduler, ...]); {{\"optimizer\": Optimizer, "
    "\"lr_scheduler\": LRScheduler or scheduler config dict, \"monitor\": \"metric\"}}; a list of such dicts; "
    "or None (no optimizer)."
)
_SCHEDULER_KEYS = tuple(a.name for a in LR_SCHEDULER_CONFIG_KEYS)


@dataclass
class LRSchedulerConfig:
    """One LR scheduler and when the Trainer steps it (the `lr_scheduler` dict of configure_optimizers)."""

    scheduler: Any
    name: str | None = None
    interval: str = "epoch"
    frequency: int = 1
    reduce_on_plateau: bool = False
    monitor: str | None = None
    strict: bool = True


def _is_optimizable(obj: Any) -> bool:
    return callable(getattr(obj, "step", None)) and callable(getattr(obj, "zero_grad", None))


def _is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


class MockOptimizer(Optimizer):
    """Stands in when configure_optimizers returns None: stepping only runs the closure."""

    def __init__(self) -> None:
        super().__init__([torch.zeros(1)], {})

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Run the closure (so training_step and backward happen) without updating anything."""
        if closure is not None:
            return closure()
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Nothing to zero."""

    def __repr__(self) -> str:
        return "No Optimizer"


def parse_configure_optimizers(
    output: Any,
) -> tuple[list[Optimizer], list[Any], str | None]:
    """Split the return value of configure_optimizers into (optimizers, scheduler entries, top-level monitor)."""
    optimizers: list[Any]
    schedulers: list[Any] = []
    monitor: str | None = None
    if output is None:
        warnings.warn(
            "configure_optimizers() returned None; this fit runs with no optimizer (the weights do not change).",
            stacklevel=3,
        )
        return [MockOptimizer()], [], None
    if _is_optimizable(output):
        return [output], [], None
    if isinstance(output, Mapping):
        optimizers, schedulers, monitor = _from_dict(output)
        return optimizers, schedulers, monitor
    if isinstance(output, (list, tuple)):
        if len(output) == 2 and isinstance(output[0], list) and all(_is_optimizable(o) for o in output[0]):
            optimizers = list(output[0])
            second = output[1]
            schedulers = list(second) if isinstance(second, (list, tuple)) else [second]
            return optimizers, schedulers, None
        if output and all(isinstance(d, Mapping) for d in output):
            optimizers = []
            for d in output:
                opts, scheds, _ = _from_dict(d)
                optimizers.extend(opts)
                schedulers.extend(scheds)
            return optimizers, schedulers, None
        if output and all(_is_optimizable(o) for o in output):
            return list(output), [], None
    raise MisconfigurationException(_UNKNOWN_SHAPE.format(what=_describe(output)))


def _describe(output: Any) -> str:
    if isinstance(output, (list, tuple)):
        inner = ", ".join(type(o).__name__ for o in output[:4])
        return f"a {type(output).__name__} of ({inner})"
    return f"a {type(output).__name__}"


def _from_dict(config: Mapping[str, Any]) -> tuple[list[Any], list[Any], str | None]:
    if "optimizer" not in config:
        raise MisconfigurationException(
            f"configure_optimizers() returned a dict without an 'optimizer' key (keys: {sorted(config)}); add "
            "\"optimizer\": your_optimizer."
        )
    if not _is_optimizable(config["optimizer"]):
        raise MisconfigurationException(
            f"configure_optimizers(): the 'optimizer' entry is a {type(config['optimizer']).__name__}, not an "
            "optimizer (it needs step() and zero_grad())."
        )
    extra = set(config) - {"optimizer", "lr_scheduler", "monitor"}
    if extra:
        warnings.warn(
            f"Found unsupported keys in the optimizer configuration: {sorted(extra)}; they are ignored. Supported "
            "keys: 'optimizer', 'lr_scheduler', 'monitor'.",
            RuntimeWarning,
            stacklevel=4,
        )
    monitor = config.get("monitor")
    scheduler = config.get("lr_scheduler")
    if scheduler is None:
        return [config["optimizer"]], [], monitor
    if isinstance(scheduler, Mapping) and monitor is not None and "monitor" not in scheduler:
        scheduler = {**scheduler, "monitor": monitor}
    elif not isinstance(scheduler, Mapping) and monitor is not None:
        scheduler = {"scheduler": scheduler, "monitor": monitor}
    return [config["optimizer"]], [scheduler], monitor


def build_scheduler_configs(
    entries: Sequence[Any], monitor: str | None, automatic: bool
) -> list[LRSchedulerConfig]:
    """Turn scheduler entries (schedulers or config dicts) into validated LRSchedulerConfig objects."""
    configs: list[LRSchedulerConfig] = []
    for entry in entries:
        if isinstance(entry, Mapping):
            if "scheduler" not in entry:
                raise MisconfigurationException(
                    'The lr scheduler dict must have the key "scheduler" with its item being an lr scheduler '
                    f"(got keys {sorted(entry)})."
                )
            unknown = set(entry) - set(_SCHEDULER_KEYS) - {"reduce_on_plateau"}
            if unknown:
                warnings.warn(
                    f"Found unsupported keys in the lr scheduler dict: {sorted(unknown)}. HINT: remove them from the "
                    f"output of configure_optimizers (supported: {list(_SCHEDULER_KEYS)}).",
                    RuntimeWarning,
                    stacklevel=4,
                )
            known = {k: v for k, v in entry.items() if k in {f.name for f in fields(LRSchedulerConfig)}}
            if "interval" in known and known["interval"] not in ("step", "epoch"):
                raise MisconfigurationException(
                    f'The "interval" key in lr scheduler dict must be "step" or "epoch", but is '
                    f'{known["interval"]!r}.'
                )
            if "frequency" in known and (not isinstance(known["frequency"], int) or known["frequency"] < 1):
                raise MisconfigurationException(
                    f'The "frequency" key in lr scheduler dict must be an int >= 1, but is {known["frequency"]!r}.'
                )
            known.setdefault("reduce_on_plateau", _is_plateau(known["scheduler"]))
            config = LRSchedulerConfig(**known)
        else:
            config = LRSchedulerConfig(scheduler=entry, reduce_on_plateau=_is_plateau(entry))
            if monitor is not None:
                config.monitor = monitor
        if automatic:
            if config.reduce_on_plateau and config.monitor is None:
                raise MisconfigurationException(
                    "The lr scheduler dict must include a monitor when a ReduceLROnPlateau scheduler is used. For "
                    'example: {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": '
                    '"your_loss"}}'
                )
            if config.interval == "epoch" and isinstance(config.scheduler, torch.optim.lr_scheduler.OneCycleLR):
                warnings.warn(
                    "A OneCycleLR scheduler is stepped once per epoch (interval='epoch'); it is usually meant to step "
                    "every batch: set \"interval\": \"step\" in its scheduler config.",
                    RuntimeWarning,
                    stacklevel=4,
                )
        else:
            dropped = [k for k in ("monitor",) if getattr(config, k) is not None]
            if config.reduce_on_plateau or dropped:
                warnings.warn(
                    "Under manual optimization the Trainer does not step schedulers: 'monitor', 'strict' and "
                    "plateau handling in the scheduler config are ignored; call self.lr_schedulers().step() yourself.",
                    RuntimeWarning,
                    stacklevel=4,
                )
        configs.append(config)
    return configs


def validate_schedulers(
    module: LightningModule, optimizers: Iterable[Optimizer], configs: Sequence[LRSchedulerConfig]
) -> None:
    """Check that each scheduler belongs to a returned optimizer and can be stepped."""
    from torchbolt.core.module import LightningModule

    optimizer_ids = {id(o) for o in optimizers}
    overridden = type(module).lr_scheduler_step is not LightningModule.lr_scheduler_step
    for config in configs:
        scheduler = config.scheduler
        if not (callable(getattr(scheduler, "state_dict", None)) and callable(getattr(scheduler, "load_state_dict", None))):
            raise TypeError(
                f"The provided lr scheduler `{type(scheduler).__name__}` is invalid: it needs state_dict() and "
                "load_state_dict()."
            )
        is_torch = isinstance(scheduler, (torch.optim.lr_scheduler.LRScheduler,
                                          torch.optim.lr_scheduler.ReduceLROnPlateau))
        if not is_torch and not overridden:
            raise MisconfigurationException(
                f"The provided lr scheduler `{type(scheduler).__name__}` doesn't follow PyTorch's LRScheduler API. "
                "Override `lr_scheduler_step(self, scheduler, metric)` in your LightningModule to step it."
            )
        sched_opt = getattr(scheduler, "optimizer", None)
        if sched_opt is not None and id(sched_opt) not in optimizer_ids:
            raise MisconfigurationException(
                f"The scheduler {type(scheduler).__name__} is bound to an optimizer that configure_optimizers() did "
                "not return; create the scheduler on one of the returned optimizers."
            )


class LightningOptimizer:
    """Wraps a torch optimizer for user code: `step()` runs the Trainer's hooks around the real step.

    Instances are also instances of the wrapped optimizer's class, and share its state and param_groups.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        # Share state (param_groups, state, defaults) with the real optimizer, without its bound `step`.
        self.__dict__ = {k: v for k, v in optimizer.__dict__.items() if k not in ("step", "__del__")}
        self._optimizer = optimizer
        self._step_runner: Callable[..., Any] | None = None
        # manual optimization's step counters (set by the Trainer); None under automatic optimization,
        # where the optimization loop counts the steps (no call on every step)
        self._on_before_step: Callable[[], None] | None = None
        self._on_after_step: Callable[[], None] | None = None
        self.__class__ = type("Lightning" + optimizer.__class__.__name__, (self.__class__, optimizer.__class__), {})

    @property
    def optimizer(self) -> Optimizer:
        """The wrapped torch optimizer."""
        return self._optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:  # type: ignore[override]
        """Zero the wrapped optimizer's gradients."""
        self._optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Callable[[], Any] | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        """Step the optimizer: run `closure`, the on_before_optimizer_step hooks, clipping, then the update."""
        before = self._on_before_step
        if before is not None:
            before()
        if closure is None:
            closure = _do_nothing
        elif not callable(closure):
            raise MisconfigurationException("When `optimizer.step(closure)` is called, the closure should be callable")
        runner = self._step_runner
        out = runner(self._optimizer, closure, **kwargs) if runner is not None else self._optimizer.step(
            closure=closure, **kwargs  # type: ignore[arg-type]
        )
        after = self._on_after_step
        if after is not None:
            after()
        return out

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """The wrapped optimizer's state_dict."""
        return self._optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        """Load into the wrapped optimizer."""
        self._optimizer.load_state_dict(state_dict)

    def __repr__(self) -> str:
        return f"LightningOptimizer({self._optimizer!r})"


def _do_nothing() -> None:
    return None


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
