"""What `self.log` records, and the metric dicts users read (callback_metrics, logged_metrics, ...).

Values stay tensors until someone needs a number: the progress bar or a logger that is due. Per step a
logged value costs a dict lookup, a detach and a list append; epoch reductions run once at epoch end, in
the same order of float operations as Lightning so both engines produce identical epoch means.
"""

from __future__ import annotations

import math
import numbers
import struct
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from torchbolt.catalog import LOG_FORBIDDEN, LOG_RULES
from torchbolt.utilities.apply_func import extract_batch_size
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

_REDUCTIONS = {"mean": "mean", "avg": "mean", "sum": "sum", "max": "max", "min": "min"}
_REDUCE_FN = {torch.mean: "mean", torch.sum: "sum", sum: "sum", torch.max: "max", max: "max",
              torch.min: "min", min: "min"}
_DL_SUFFIX = "/dataloader_idx_{}"
_FOLD_AT = 256  # fold pending epoch values into the running total past this many (bounded memory)


def _float_dtype() -> torch.dtype:
    dtype = torch.get_default_dtype()
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _parse_reduce(reduce_fx: str | Callable[..., Any]) -> str:
    if isinstance(reduce_fx, str):
        found = _REDUCTIONS.get(reduce_fx.lower())
    else:
        found = _REDUCE_FN.get(reduce_fx)  # type: ignore[call-overload]
    if found is None:
        raise MisconfigurationException(
            f"self.log(..., reduce_fx={reduce_fx!r}) is not supported; use one of 'mean', 'sum', 'max', 'min' "
            "(or log a torchmetrics.Metric for a custom reduction)."
        )
    return found


def _derives_from(value: Any, module: str, name: str) -> bool:
    """True when `value`'s class derives from `module`.`name`, found without importing `module`
    (torchmetrics is optional: when it is not imported, nothing can be one of its objects)."""
    if module not in __import__("sys").modules:
        return False
    return any(k.__name__ == name and k.__module__.startswith(module) for k in type(value).__mro__)


def is_torchmetrics_metric(value: Any) -> bool:
    """A torchmetrics `Metric` (it accumulates and computes its own epoch value)."""
    return _derives_from(value, "torchmetrics", "Metric")


def metric_collection_items(value: Any) -> dict[str, Any] | None:
    """The metrics of a torchmetrics `MetricCollection` under their logged names (prefix/postfix
    included), or None when `value` is not one."""
    if not _derives_from(value, "torchmetrics", "MetricCollection"):
        return None
    try:
        return dict(value.items(keep_base=False, copy_state=False))
    except TypeError:  # torchmetrics < 1.0 has no copy_state
        return dict(value.items(keep_base=False))


def metric_attribute_of(module: LightningModule, metric: Any, name: str, cache: dict[int, str]) -> str:
    """The module attribute (dotted path) that holds `metric`; Lightning requires one, so a metric's
    state belongs to the module (checkpoints, device moves). The error says how to fix it. `cache` maps
    metric ids to paths and is refreshed when a metric is not found in it."""
    if id(metric) not in cache:
        cache.clear()
        cache.update({id(m): path for path, m in module.named_modules() if is_torchmetrics_metric(m)})
    found = cache.get(id(metric))
    if found is None:
        if not cache:
            raise MisconfigurationException(
                f"self.log({name!r}, metric): the torchmetrics Metric is not an attribute of "
                f"{type(module).__name__}; create it in __init__ (self.{name.replace('/', '_')} = Metric(...)) "
                f"so its state moves and is saved with the module, or pass metric_attribute=<attribute name>.")
        raise MisconfigurationException(
            f"self.log({name!r}, metric): this torchmetrics Metric is not an attribute of "
            f"{type(module).__name__}; log one of its metrics or call self.log({name!r}, ..., "
            f"metric_attribute=NAME) with NAME one of {sorted(cache.values())}.")
    return found


class MetricMeta:
    """How one logged name behaves: levels, reduction, destinations, dataloader."""

    __slots__ = ("fx", "name", "prog_bar", "logger", "on_step", "on_epoch", "reduce", "enable_graph",
                 "add_dataloader_idx", "dataloader_idx", "args_key", "forked")

    def __init__(self, fx: str, name: str, prog_bar: bool, logger: bool, on_step: bool, on_epoch: bool,
                 reduce: str, enable_graph: bool, add_dataloader_idx: bool, dataloader_idx: int | None,
                 args_key: tuple[Any, ...]) -> None:
        self.fx = fx
        self.name = name
        self.prog_bar = prog_bar
        self.logger = logger
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.reduce = reduce
        self.enable_graph = enable_graph
        self.add_dataloader_idx = add_dataloader_idx
        self.dataloader_idx = dataloader_idx
        self.args_key = args_key
        self.forked = on_step and on_epoch

    def names(self, on_step: bool) -> tuple[str, str]:
        """(plain name, forked name) with the dataloader suffix when it applies."""
        forked = f"{self.name}_{'step' if on_step else 'epoch'}" if self.forked else self.name
        name = self.name
        if self.add_dataloader_idx and self.dataloader_idx is not None:
            suffix = _DL_SUFFIX.format(self.dataloader_idx)
            name += suffix
            forked += suffix
        return name, forked


_F32 = struct.Struct("f")


def _round_f32(x: float) -> float:
    """`x` rounded to the nearest float32 (to ±inf past float32's range, as a float32 add overflows)."""
    try:
        return _F32.unpack(_F32.pack(x))[0]  # type: ignore[no-any-return]
    except OverflowError:
        return math.copysign(math.inf, x)


def fold_sum_exact(total: Tensor, pending: list[tuple[Tensor, int]], weighted: bool) -> Tensor | None:
    """`total + v1*b1 + v2*b2 + ...` (or `+ v1 + v2 ...`), added one value at a time in the tensors' dtype
    exactly as that sequence of tensor additions would round, at the cost of a few tensor ops per fold
    instead of two per logged step. None when the values are not all CPU tensors of `total`'s dtype
    (the caller then adds them one by one).

    Float32 sums are computed in Python doubles and rounded to float32 after every addition: double has
    more than 2*24+2 bits, so each rounded result equals the float32 addition's (no double rounding error).
    """
    dtype = total.dtype
    if dtype is not torch.float32 and dtype is not torch.float64 or total.device.type != "cpu":
        return None
    values = []
    for value, _ in pending:
        if value.dtype is not dtype or value.device.type != "cpu" or value.ndim:
            return None
        values.append(value)
    stacked = torch.stack(values)
    if weighted:
        sizes = [size for _, size in pending]
        first = sizes[0]
        # each product rounds once, as the per-step `value * batch_size` does
        stacked = stacked * first if all(size == first for size in sizes) else stacked * torch.tensor(sizes)
    acc = total.item()
    if dtype is torch.float32:
        for term in stacked.tolist():
            acc = _round_f32(acc + term)
    else:
        for term in stacked.tolist():
            acc += term
    return torch.tensor(acc, dtype=dtype)


class ResultMetric:
    """One logged name's values: the latest step value and what the epoch reduction needs."""

    __slots__ = ("meta", "is_tensor", "step_value", "pending", "total", "count", "has_reset", "_computed",
                 "metric")

    def __init__(self, meta: MetricMeta, is_tensor: bool) -> None:
        self.meta = meta
        self.is_tensor = is_tensor
        self.metric: Any = None
        self.reset()
        self.has_reset = False

    def reset(self) -> None:
        self.step_value: Tensor | None = None
        self.pending: list[tuple[Tensor, int]] = []
        self.total: Tensor | None = None
        self.count: int = 0
        self._computed: Tensor | None = None
        self.has_reset = True
        if self.metric is not None:
            self.metric.reset()

    def update(self, value: Any, batch_size: int) -> None:
        self.has_reset = False
        self._computed = None
        if not self.is_tensor:  # a torchmetrics Metric: it accumulates itself
            self.metric = value
            self.step_value = getattr(value, "_forward_cache", None)
            return
        meta = self.meta
        if meta.on_step:
            self.step_value = value
            if not meta.on_epoch:
                return
        self.pending.append((value, batch_size))
        if len(self.pending) >= _FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        reduce = self.meta.reduce
        total = self.total
        if total is None:
            start = 0.0 if reduce in ("mean", "sum") else (float("-inf") if reduce == "max" else float("inf"))
            total = torch.tensor(start, dtype=_float_dtype())
        if reduce in ("mean", "sum") and len(self.pending) > 1:
            folded = fold_sum_exact(total, self.pending, weighted=reduce == "mean")
            if folded is not None:
                if reduce == "mean":
                    self.count += sum(size for _, size in self.pending)
                self.pending = []
                self.total = folded
                return
        for value, batch_size in self.pending:
            if reduce == "mean":
                total = total + value * batch_size
                self.count += batch_size
            elif reduce == "sum":
                total = total + value
            elif reduce == "max":
                total = torch.max(total, value)
            else:
                total = torch.min(total, value)
        self.pending = []
        self.total = total

    def compute(self) -> Tensor | None:
        if self._computed is not None:
            return self._computed
        if not self.is_tensor:
            if self.metric is None:
                return None
            self._computed = self.metric.compute()
            return self._computed
        if not self.meta.on_epoch:
            self._computed = self.step_value
            return self._computed
        self._fold()
        if self.total is None:
            return None
        value = self.total
        if self.meta.reduce == "mean":
            value = value / torch.tensor(self.count)
        self._computed = value
        return value


class Results(dict):  # type: ignore[type-arg]
    """The logged values of one loop (training, or one evaluation loop), keyed by (hook, name, dataloader)."""

    def __init__(self, training: bool) -> None:
        super().__init__()
        self.training = training
        self.batch: Any = None
        self.batch_size: int | None = None
        self.dataloader_idx: int | None = None

    def valid_items(self) -> list[ResultMetric]:
        idx = self.dataloader_idx
        return [m for m in self.values() if not m.has_reset and m.meta.dataloader_idx == idx]

    def metrics(self, on_step: bool) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        """(callback, log, progress-bar) metrics of the current step (`on_step`) or epoch."""
        callback: dict[str, Tensor] = {}
        log: dict[str, Tensor] = {}
        pbar: dict[str, Tensor] = {}
        for metric in self.valid_items():
            meta = metric.meta
            if on_step:
                value = metric.step_value if meta.on_step else None
            else:
                value = metric.compute() if meta.on_epoch else None
            if not isinstance(value, Tensor):
                continue
            if not meta.enable_graph:
                value = value.detach()
            name, forked = meta.names(on_step)
            if meta.logger:
                log[forked] = value
            if self.training or (meta.on_epoch and not on_step):
                callback[name] = value
                callback[forked] = value
            if meta.prog_bar:
                pbar[forked] = value
        return callback, log, pbar

    def reset(self, fx: str | None = None) -> None:
        for metric in self.values():
            if fx is None or metric.meta.fx == fx:
                metric.reset()

    def state_dict(self) -> list[dict[str, Any]]:
        """The running values of plain (tensor) metrics, for an exact mid-epoch resume.

        Plain data only (tensors, numbers, strings, tuples), so the safe checkpoint loader reads it;
        torchmetrics objects keep their own state and are left out.
        """
        state: list[dict[str, Any]] = []
        for key, metric in self.items():
            if not metric.is_tensor:
                continue
            meta = metric.meta
            state.append({
                "key": key,
                "meta": {slot: getattr(meta, slot) for slot in MetricMeta.__slots__ if slot != "forked"}
                | {"args_key": tuple(v if isinstance(v, (bool, int, float, str, type(None))) else repr(v)
                                     for v in meta.args_key)},
                "step_value": metric.step_value,
                "pending": [(value, size) for value, size in metric.pending],
                "total": metric.total,
                "count": metric.count,
                "has_reset": metric.has_reset,
            })
        return state

    def load_state_dict(self, state: list[dict[str, Any]]) -> None:
        """Restore what `state_dict` captured (replacing entries with the same keys)."""
        for entry in state:
            meta = MetricMeta(**entry["meta"])
            metric = ResultMetric(meta, is_tensor=True)
            metric.step_value = entry["step_value"]
            metric.pending = [(value, int(size)) for value, size in entry["pending"]]
            metric.total = entry["total"]
            metric.count = int(entry["count"])
            metric.has_reset = bool(entry["has_reset"])
            key = entry["key"]
            self[tuple(key) if isinstance(key, list) else key] = metric

    def cached_batch_size(self, meta: MetricMeta) -> int:
        if self.batch_size is not None:
            return self.batch_size
        batch = self.batch
        if batch is None or not (meta.on_epoch and meta.reduce == "mean"):
            return 1
        first = batch[0] if (type(batch) is list or type(batch) is tuple) and batch else None
        if isinstance(first, Tensor):
            # the common (inputs, targets) batch: what extract_batch_size finds first, without its search
            self.batch_size = 1 if first.ndim == 0 else int(first.size(0))
        else:
            self.batch_size = extract_batch_size(batch)
        return self.batch_size


class MetricsHub:
    """Owns every Results collection of a Trainer and the metric dicts it exposes."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer
        self.callback: dict[str, Tensor] = {}
        self.logged: dict[str, Tensor] = {}
        self.pbar: dict[str, float] = {}
        self.active: Results | None = None
        self.on_step = False  # True inside a batch loop (step values), False at epoch end (epoch values)
        self._dirty = False  # the active results hold values not yet merged into the dicts
        self.disabled = False  # barebones
        self._warned_no_logger = False
        self._metric_attributes: dict[int, str] = {}  # id(torchmetrics Metric) -> module attribute path

    # -- switching --------------------------------------------------------------------------------
    def activate(self, results: Results | None) -> None:
        """Make `results` the collection `self.log` writes to (None: logging not allowed, e.g. predict)."""
        self.flush()
        self.active = results

    def set_on_step(self, on_step: bool) -> None:
        """Switch between step-level and epoch-level views of the active results."""
        if on_step != self.on_step:
            self.flush()
            self.on_step = on_step
            # Entering the epoch view: epoch values (reductions, Metric.compute) are due, computed when first
            # read (e.g. trainer.callback_metrics in on_train_epoch_end, as in Lightning).
            self._dirty = not on_step and self.active is not None

    def flush(self) -> None:
        """Merge the active results into callback/logged/progress-bar dicts (done lazily, when it matters)."""
        if not self._dirty or self.active is None:
            self._dirty = False
            return
        callback, log, pbar = self.active.metrics(self.on_step)
        self.callback.update(callback)
        self.logged.update(log)
        for key, value in pbar.items():
            self.pbar[key] = value  # type: ignore[assignment]
        self._dirty = False

    def reset_metrics(self) -> None:
        """Forget all exposed metrics (after the sanity check, as Lightning does)."""
        self.callback = {}
        self.logged = {}
        self.pbar = {}
        self._dirty = False

    def reset_results(self, results: Results | None) -> None:
        """Mark every value of `results` as consumed (end of an epoch / evaluation run)."""
        if results is self.active:
            self.flush()
        if results is not None:
            results.reset()

    # -- reading ----------------------------------------------------------------------------------
    def callback_metrics(self) -> dict[str, Tensor]:
        self.flush()
        return self.callback

    def logged_metrics(self) -> dict[str, Tensor]:
        self.flush()
        return self.logged

    def progress_bar_metrics(self) -> dict[str, float]:
        self.flush()
        for key, value in self.pbar.items():
            if isinstance(value, Tensor):
                self.pbar[key] = value.item()
        return self.pbar

    def epoch_metrics(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
        """Epoch-level (callback, log, pbar) of the active results, merged into the exposed dicts."""
        assert self.active is not None
        callback, log, pbar = self.active.metrics(False)
        self.callback.update(callback)
        self.logged.update(log)
        self.pbar.update(pbar)  # type: ignore[arg-type]
        return callback, log, pbar

    # -- writing ----------------------------------------------------------------------------------
    def log_repeat(self, name: str, value: Tensor, args_key: tuple[Any, ...], batch_size: int | None) -> bool:
        """Record a `self.log` of a float tensor whose (hook, name, arguments) were already validated in this
        loop; returns False (nothing recorded) when the full path must run instead.

        Runs for nearly every `self.log` call, so it does only what the value needs: the configuration,
        checked on the first call, is reused while the arguments stay the same.
        """
        results = self.active
        if results is None or self.disabled:
            return False
        add_dataloader_idx = args_key[6]
        metric = results.get((self._trainer._ctx.fx, name, results.dataloader_idx if add_dataloader_idx else None))
        if metric is None or not metric.is_tensor or metric.meta.args_key != args_key:
            return False
        dtype = value.dtype
        if dtype is not torch.float32 and dtype is not torch.float64:
            return False  # the conversion warning: the full path
        # a 0-d tensor (the usual loss) holds one element: numel(), a call into torch, only for the others
        squeeze = value.ndim != 0
        if squeeze and value.numel() != 1:
            return False  # the shape error: the full path
        if not args_key[5]:  # enable_graph
            value = value.detach()
        if squeeze:
            value = value.squeeze()
        meta = metric.meta
        if batch_size is None:
            batch_size = results.cached_batch_size(meta) if meta.on_epoch else 1
        metric.update(value, batch_size)
        self._dirty = True
        return True

    def log_from_module(
        self, module: LightningModule, name: str, value: Any, *, prog_bar: bool, logger: bool | None,
        on_step: bool | None, on_epoch: bool | None, reduce_fx: str | Callable[..., Any], enable_graph: bool,
        add_dataloader_idx: bool, batch_size: int | None, metric_attribute: str | None,
    ) -> None:
        """Record one `self.log` call (see LightningModule.log for the semantics)."""
        if self.disabled:
            warnings.warn(
                "self.log() does nothing under Trainer(barebones=True): logging costs time per step and barebones "
                "turns it off. Remove barebones=True to log.",
                stacklevel=3,
            )
            return
        results = self.active
        trainer = self._trainer
        fx = trainer._ctx.fx
        if results is None:
            if fx in LOG_FORBIDDEN:
                raise MisconfigurationException(
                    f"You can't `self.log()` inside `{fx}`: the Trainer does not record metrics there. Log from "
                    "training_step, validation_step, test_step, or an on_train/validation/test epoch hook."
                )
            if fx is not None and (fx.startswith("on_predict") or fx == "predict_step"):
                raise MisconfigurationException(
                    f"You can't `self.log()` inside `{fx}`: predict hooks do not support logging. Return the "
                    "values from predict_step instead."
                )
            raise MisconfigurationException(
                f"self.log({name!r}, ...) was called outside the Trainer's loops (hook: {fx!r}); log from a "
                "training/validation/test step or an epoch hook."
            )
        if fx is None:
            raise MisconfigurationException(
                f"self.log({name!r}, ...) was called outside a hook run by the Trainer; log from training_step, "
                "validation_step, test_step or an on_*_epoch_* hook."
            )
        if metric_attribute is None and not isinstance(value, Tensor) and is_torchmetrics_metric(value):
            metric_attribute_of(module, value, name, self._metric_attributes)
        dl_idx = results.dataloader_idx
        key = (fx, name, dl_idx if add_dataloader_idx else None)
        args_key = (prog_bar, logger, on_step, on_epoch, reduce_fx, enable_graph, add_dataloader_idx)
        metric = results.get(key)
        if metric is None or metric.meta.args_key != args_key:
            metric = self._register(results, key, fx, name, value, args_key, dl_idx)
        if isinstance(value, Tensor):
            if not enable_graph:
                value = value.detach()
            if value.dtype is not torch.float32 and value.dtype is not torch.float64:
                value = self._to_float(name, fx, value)
            if value.ndim:
                value = value.squeeze()
        elif metric.is_tensor:
            value = torch.tensor(value, dtype=_float_dtype())
        if batch_size is None:
            batch_size = results.cached_batch_size(metric.meta) if metric.meta.on_epoch else 1
        metric.update(value, batch_size)
        self._dirty = True

    def _to_float(self, name: str, fx: str, value: Tensor) -> Tensor:
        if not torch.is_floating_point(value):
            warnings.warn(
                f"self.log({name!r}, ...) in `{fx}` got an integer tensor; it is converted to "
                f"{_float_dtype()} so it can be reduced. Convert it yourself to silence this warning.",
                stacklevel=4,
            )
        return value.to(_float_dtype())

    def _register(self, results: Results, key: tuple[str, str, int | None], fx: str, name: str, value: Any,
                  args_key: tuple[Any, ...], dl_idx: int | None) -> ResultMetric:
        prog_bar, logger, on_step, on_epoch, reduce_fx, enable_graph, add_dataloader_idx = args_key
        existing = results.get(key)
        if existing is not None:
            raise MisconfigurationException(
                f"You called `self.log({name}, ...)` twice in `{fx}` with different arguments; log each name with "
                "the same arguments every time (or use a different name)."
            )
        if fx in LOG_FORBIDDEN:
            raise MisconfigurationException(
                f"You can't `self.log()` inside `{fx}`: the Trainer does not record metrics there. Log from "
                "training_step, validation_step, test_step, or an on_train/validation/test epoch hook."
            )
        rule = LOG_RULES.get(fx)
        if rule is None:
            raise MisconfigurationException(
                f"Logging inside `{fx}` is not supported: it is not a hook the Trainer records metrics for. Log "
                "from training_step, validation_step, test_step, or an on_*_epoch_* hook."
            )
        on_step = rule.default_on_step if on_step is None else on_step
        on_epoch = rule.default_on_epoch if on_epoch is None else on_epoch
        if on_step not in rule.allowed_on_step:
            raise MisconfigurationException(
                f"You can't `self.log(on_step={on_step})` inside `{fx}`, must be one of {rule.allowed_on_step}."
            )
        if on_epoch not in rule.allowed_on_epoch:
            raise MisconfigurationException(
                f"You can't `self.log(on_epoch={on_epoch})` inside `{fx}`, must be one of {rule.allowed_on_epoch}."
            )
        if not on_step and not on_epoch:
            raise MisconfigurationException(
                f"self.log({name!r}, on_step=False, on_epoch=False) records nothing; set on_step=True and/or "
                "on_epoch=True."
            )
        if "/dataloader_idx_" in name:
            raise MisconfigurationException(
                f"You called `self.log` with the key `{name}` but it should not contain information about "
                "`dataloader_idx`: the Trainer appends '/dataloader_idx_N' itself."
            )
        reduce = _parse_reduce(reduce_fx)
        logger_flag = True if logger is None else bool(logger)
        if logger and not self._trainer.loggers and not self._warned_no_logger:
            self._warned_no_logger = True
            warnings.warn(
                f"You called `self.log({name!r}, ..., logger=True)` but the Trainer has no logger; configure one "
                "with Trainer(logger=...) or drop logger=True.",
                stacklevel=4,
            )
        is_tensor = isinstance(value, (Tensor, numbers.Number))
        meta = MetricMeta(fx, name, bool(prog_bar), logger_flag, bool(on_step), bool(on_epoch), reduce,
                          bool(enable_graph), bool(add_dataloader_idx), dl_idx, args_key)
        metric = ResultMetric(meta, is_tensor)
        results[key] = metric
        return metric
