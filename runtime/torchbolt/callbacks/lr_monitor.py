"""`LearningRateMonitor`: log each optimizer's learning rate (and optionally momentum and weight decay).

Names follow Lightning: `lr-<OptimizerClass>` (or the scheduler config's `name`), `-1`, `-2` for further
optimizers of the same class, `/pg1`, `/pg2` (or the param group's `name`) when there are several groups,
and `-momentum` / `-weight_decay` suffixes.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import torch

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from torchbolt.trainer.trainer import Trainer


def _logging_step(trainer: Trainer) -> int:
    """The step the Trainer's loggers use: batches that stepped the optimizer so far."""
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def _should_update_logs(trainer: Trainer) -> bool:
    every = trainer.log_every_n_steps
    if not every:
        return False
    return (_logging_step(trainer) + 1) % every == 0 or trainer.should_stop


def _unwrap(optimizer: Any) -> Any:
    return getattr(optimizer, "optimizer", optimizer)


class LearningRateMonitor(Callback):
    """Logs learning rates at every logged step (`logging_interval="step"`), at each epoch start
    (`"epoch"`), or following each scheduler's own interval (None, the default)."""

    def __init__(
        self,
        logging_interval: str | None = None,
        log_momentum: bool = False,
        log_weight_decay: bool = False,
    ) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise MisconfigurationException(
                f"LearningRateMonitor(logging_interval={logging_interval!r}) is invalid: use 'step', 'epoch' or None."
            )
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}
        self.last_momentum_values: dict[str, float | None] = {}
        self.last_weight_decay_values: dict[str, float | None] = {}

    def on_train_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if not trainer.loggers:
            raise MisconfigurationException(
                "Cannot use `LearningRateMonitor` callback with `Trainer` that has no logger: pass "
                "`Trainer(logger=True)` or a logger."
            )
        configs = list(trainer.lr_scheduler_configs)
        optimizers = [_unwrap(o) for o in trainer.optimizers]
        if self.log_momentum:
            checked = [c.scheduler.optimizer for c in configs] or optimizers
            if any("momentum" not in o.defaults and "betas" not in o.defaults for o in checked):
                warnings.warn(
                    "LearningRateMonitor(log_momentum=True): some optimizers have no momentum; 0 is logged for them.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        names = [n for group in self._all_names(trainer)[0] for n in group]
        self.lrs = {name: [] for name in names}
        self.last_momentum_values = {f"{name}-momentum": None for name in names}
        self.last_weight_decay_values = {f"{name}-weight_decay": None for name in names}

    def on_train_batch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if not _should_update_logs(trainer) or self.logging_interval == "epoch":
            return
        self._log(trainer, "step" if self.logging_interval is None else "any")

    def on_train_epoch_start(self, trainer: Trainer, *args: Any, **kwargs: Any) -> None:
        if self.logging_interval == "step":
            return
        self._log(trainer, "epoch" if self.logging_interval is None else "any")

    # ----------------------------------------------------------------------------------------------
    def _log(self, trainer: Trainer, interval: str) -> None:
        stats = self._extract_stats(trainer, interval)
        if not stats:
            return
        step = _logging_step(trainer)
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)

    def _all_names(self, trainer: Trainer) -> tuple[list[list[str]], list[Any], list[Any]]:
        """Names per scheduler and per scheduler-less optimizer, the schedulers' configs, and those optimizers."""
        configs = list(trainer.lr_scheduler_configs)
        seen: list[Any] = []
        seen_types: defaultdict[type, int] = defaultdict(int)
        names: list[list[str]] = []
        for config in configs:
            optimizer = config.scheduler.optimizer
            name = config.name if getattr(config, "name", None) is not None else f"lr-{type(optimizer).__name__}"
            names.append(self._names_for(optimizer, name, seen, seen_types, counts=config.name is None))
        lone: list[Any] = []
        for optimizer in trainer.optimizers:
            optimizer = _unwrap(optimizer)
            if any(optimizer is s for s in seen):
                continue
            names.append(self._names_for(optimizer, f"lr-{type(optimizer).__name__}", seen, seen_types, True))
            lone.append(optimizer)
        return names, configs, lone

    @staticmethod
    def _names_for(optimizer: Optimizer, name: str, seen: list[Any], seen_types: defaultdict[type, int],
                   counts: bool) -> list[str]:
        seen.append(optimizer)
        cls = type(optimizer)
        if counts:
            seen_types[cls] += 1
        groups = optimizer.param_groups
        labels = [g.get("name", f"pg{i}") for i, g in enumerate(groups, start=1)]
        duplicated = {n for n in labels if labels.count(n) > 1}
        if duplicated:
            raise MisconfigurationException(
                f"Optimizer {name} has several parameter groups named {sorted(duplicated)}: give each group a "
                "distinct `name` so LearningRateMonitor can tell them apart."
            )
        if cls in seen_types and seen_types[cls] > 1:
            name = f"{name}-{seen_types[cls] - 1}"
        result = []
        for index, group in enumerate(groups):
            if len(groups) > 1:
                result.append(f"{name}/{group.get('name', f'pg{index + 1}')}")
            elif group.get("name"):
                result.append(f"{name}/{group['name']}")
            else:
                result.append(name)
        return result

    def _extract_stats(self, trainer: Trainer, interval: str) -> dict[str, float]:
        names, configs, lone = self._all_names(trainer)
        stats: dict[str, float] = {}
        for group_names, config in zip(names[: len(configs)], configs, strict=True):
            if interval in (getattr(config, "interval", "epoch"), "any"):
                stats.update(self._optimizer_stats(config.scheduler.optimizer, group_names))
        for group_names, optimizer in zip(names[len(configs):], lone, strict=True):
            stats.update(self._optimizer_stats(optimizer, group_names))
        metrics = trainer.callback_metrics
        if isinstance(metrics, dict):
            metrics.update({k: torch.tensor(float(v)) for k, v in stats.items()})
        return stats

    def _optimizer_stats(self, optimizer: Optimizer, names: list[str]) -> dict[str, float]:
        stats: dict[str, float] = {}
        use_betas = "betas" in optimizer.defaults
        # values are passed on as the param group holds them (an int weight_decay stays an int), as Lightning does
        for group, name in zip(optimizer.param_groups, names, strict=True):
            lr = group["lr"]
            self.lrs.setdefault(name, []).append(lr)
            stats[name] = lr
            if self.log_momentum:
                momentum = group["betas"][0] if use_betas else group.get("momentum", 0)
                self.last_momentum_values[f"{name}-momentum"] = momentum
                stats[f"{name}-momentum"] = momentum
            if self.log_weight_decay:
                decay = group.get("weight_decay", 0)
                self.last_weight_decay_values[f"{name}-weight_decay"] = decay
                stats[f"{name}-weight_decay"] = decay
        return stats
