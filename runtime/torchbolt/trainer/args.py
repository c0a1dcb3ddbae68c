"""Validation of Trainer arguments against the catalog, and the frozen pydantic `TrainerConfig` holding them.

Every check reads `catalog.TRAINER_ARGS` (accepted types, allowed values, numeric constraints) and
`catalog.REMOVED_TRAINER_ARGS`; nothing here lists arguments a second time. pydantic (~0.2 s to import)
is imported only when `trainer.config` is first read, so neither `import torchbolt` nor `Trainer()` pays it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from torchbolt.catalog import REMOVED_TRAINER_ARGS, TRAINER_ARGS, TRAINER_ARGS_BY_NAME, Arg, did_you_mean
from torchbolt.utilities.exceptions import TrainerArgumentError

# Arguments whose allowed values the hardware plan checks (it also knows which ones this build runs).
_HARDWARE_ARGS = frozenset({"accelerator", "strategy", "devices", "precision", "num_nodes"})
_LIMIT_ARGS = ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
               "overfit_batches", "val_check_interval")

_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, float),
    "str": lambda v: isinstance(v, str),
    "none": lambda v: v is None,
    "timedelta": lambda v: isinstance(v, dt.timedelta),
    "dict": lambda v: isinstance(v, Mapping),
    "list": lambda v: isinstance(v, (list, tuple)),
    "path": lambda v: isinstance(v, os.PathLike),
    "callable": callable,
    "object": lambda v: v is not None and not isinstance(v, (bool, int, float, str, Mapping, list, tuple)),
}
_TYPE_WORDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "none": "None",
               "timedelta": "timedelta", "dict": "dict", "list": "list", "path": "path",
               "callable": "callable", "object": "an object"}


def _describe_types(arg: Arg) -> str:
    return " or ".join(_TYPE_WORDS[t] for t in arg.types)


def _fmt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_ALT = re.compile(
    r"^(?:(?P<type>int|float)\s+)?(?:(?P<op>>=|<=|>|<)\s*(?P<num>-?\d+(?:\.\d+)?)|in\s*(?P<lo_b>[\[(])\s*"
    r"(?P<lo>-?\d+(?:\.\d+)?)\s*,\s*(?P<hi>-?\d+(?:\.\d+)?)\s*(?P<hi_b>[\])])|(?P<eq>-?\d+(?:\.\d+)?))$"
)


def satisfies(constraint: str, value: Any) -> bool:
    """Whether a number meets a catalog constraint such as '>= -1', '-1 or >= 1' or 'int >= 0 or float in [0.0, 1.0]'."""
    if not constraint or isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    for alt in constraint.split(" or "):
        m = _ALT.match(alt.strip())
        if m is None:
            raise ValueError(f"catalog constraint {constraint!r} is not understood (alternative {alt!r})")
        kind = m.group("type")
        if kind == "int" and not isinstance(value, int):
            continue
        if kind == "float" and not isinstance(value, float):
            continue
        if m.group("op"):
            num = float(m.group("num"))
            ok = {">=": value >= num, "<=": value <= num, ">": value > num, "<": value < num}[m.group("op")]
        elif m.group("eq"):
            ok = value == float(m.group("eq"))
        else:
            lo, hi = float(m.group("lo")), float(m.group("hi"))
            ok = (value >= lo if m.group("lo_b") == "[" else value > lo) and (
                value <= hi if m.group("hi_b") == "]" else value < hi)
        if ok:
            return True
    return False


def unknown_argument_error(name: str) -> TrainerArgumentError:
    """The error for a Trainer keyword that 2.x does not have: removed (with replacement) or misspelled."""
    removed = REMOVED_TRAINER_ARGS.get(name)
    if removed is not None:
        return TrainerArgumentError(
            f"Trainer(`{name}`) was removed in Lightning {removed.removed_in}: {removed.replacement}."
        )
    suggestion = did_you_mean(name, TRAINER_ARGS_BY_NAME)
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return TrainerArgumentError(
        f"Trainer() got an unexpected keyword argument `{name}`.{hint} Valid arguments: "
        f"{', '.join(a.name for a in TRAINER_ARGS)}."
    )


def _normalize(name: str, value: Any) -> Any:
    # Lightning accepts integral floats above 1 (e.g. 10.0) as batch counts for limits and intervals.
    if name in _LIMIT_ARGS and isinstance(value, float) and value > 1 and value.is_integer():
        return int(value)
    return value


def parse_max_time(value: Any, name: str = "max_time") -> dt.timedelta | None:
    """A duration argument as a timedelta: from 'DD:HH:MM:SS', a timedelta, or a dict of timedelta arguments."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise TrainerArgumentError(
                f"Trainer({name}={value!r}) is invalid: write it as 'DD:HH:MM:SS', e.g. '00:12:00:00'."
            )
        days, hours, minutes, seconds = (int(p) for p in parts)
        return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if isinstance(value, Mapping):
        try:
            return dt.timedelta(**value)
        except TypeError as exc:
            raise TrainerArgumentError(
                f"Trainer({name}={value!r}) is invalid: the dict must hold timedelta arguments such as "
                f"{{'hours': 1, 'minutes': 30}} ({exc})."
            ) from None
    raise TrainerArgumentError(f"Trainer({name}={_fmt(value)}) must be 'DD:HH:MM:SS', a timedelta or a dict.")


def check_argument(arg: Arg, value: Any) -> Any:
    """Validate one argument value against its catalog record; returns the (normalized) value."""
    value = _normalize(arg.name, value)
    if arg.types and not any(_TYPE_CHECKS[t](value) for t in arg.types):
        allowed = f" Allowed values: {', '.join(map(repr, arg.choices))}." if arg.choices else ""
        raise TrainerArgumentError(
            f"Trainer({arg.name}={_fmt(value)}) has type {type(value).__name__}; expected {_describe_types(arg)}."
            f"{allowed}"
        )
    if arg.name in _HARDWARE_ARGS:
        return value  # resolve_plan checks names and values, and knows what this build supports
    if arg.choices and not arg.choices_open and value is not None:
        candidates = arg.choices
        probe = value.lower() if isinstance(value, str) else value
        if probe not in candidates:
            hint = ""
            if isinstance(value, str):
                close = did_you_mean(value, [c for c in candidates if isinstance(c, str)])
                hint = f" Did you mean {close!r}?" if close else ""
            raise TrainerArgumentError(
                f"Trainer({arg.name}={_fmt(value)}) is invalid. Allowed values: "
                f"{', '.join(map(repr, candidates))}.{hint}"
            )
        if isinstance(value, str):
            value = probe
    if arg.constraint and not satisfies(arg.constraint, value):
        raise TrainerArgumentError(
            f"Trainer({arg.name}={_fmt(value)}) is out of range: it must be {arg.constraint}."
        )
    if arg.name == "max_time" or (arg.name == "val_check_interval" and isinstance(value, (str, Mapping, dt.timedelta))):
        parse_max_time(value, arg.name)
    return value


def check_barebones(values: Mapping[str, Any]) -> None:
    """barebones=True turns off per-step features; enabling one of them explicitly is a contradiction."""
    if not values.get("barebones"):
        return
    conflicts = []
    for name in ("enable_checkpointing", "enable_progress_bar", "enable_model_summary"):
        if values.get(name):
            conflicts.append(f"{name}=True")
    if values.get("logger") not in (None, False):
        conflicts.append(f"logger={_fmt(values['logger'])}")
    if values.get("log_every_n_steps") not in (None, 0):
        conflicts.append(f"log_every_n_steps={values['log_every_n_steps']}")
    if values.get("num_sanity_val_steps") not in (None, 0):
        conflicts.append(f"num_sanity_val_steps={values['num_sanity_val_steps']}")
    if values.get("fast_dev_run"):
        conflicts.append(f"fast_dev_run={values['fast_dev_run']!r}")
    if values.get("detect_anomaly"):
        conflicts.append("detect_anomaly=True")
    if values.get("profiler") is not None:
        conflicts.append(f"profiler={_fmt(values['profiler'])}")
    if conflicts:
        raise TrainerArgumentError(
            f"Trainer(barebones=True) turns off every per-step feature, so it cannot be combined with "
            f"{', '.join(conflicts)}; remove barebones=True or those arguments."
        )


def _as_list(value: Any) -> list[Any]:
    if value is None or value is False or value is True:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Mapping) or isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def check_object_args(values: Mapping[str, Any]) -> None:
    """Checks of the object-valued arguments (`callbacks`, `logger`) that catalog types cannot express:
    what the objects are, and their agreement with the enable_* switches."""
    from torchbolt.callbacks.callback import Callback
    from torchbolt.callbacks.checkpoint import Checkpoint
    from torchbolt.callbacks.progress import ProgressBar

    given = values.get("callbacks")
    callbacks = [given] if isinstance(given, Callback) else _as_list(given)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TrainerArgumentError(
                f"Trainer(callbacks=...) got a {type(cb).__name__}, which is not a Callback; pass instances of "
                "torchbolt.Callback subclasses (for instance ModelCheckpoint(...))."
            )
    if values.get("enable_checkpointing") is False and any(isinstance(cb, Checkpoint) for cb in callbacks):
        raise TrainerArgumentError(
            "Trainer was configured with enable_checkpointing=False but found ModelCheckpoint in callbacks list; "
            "remove one of them."
        )
    bars = [cb for cb in callbacks if isinstance(cb, ProgressBar)]
    if len(bars) > 1:
        raise TrainerArgumentError("You added multiple progress bar callbacks to the Trainer; keep only one.")
    if bars and values.get("enable_progress_bar") is False:
        raise TrainerArgumentError(
            f"Trainer was configured with enable_progress_bar=False but found {type(bars[0]).__name__} in "
            "callbacks list; remove one of them."
        )
    logger = values.get("logger")
    if logger is not None and not isinstance(logger, bool):
        for item in _as_list(logger):
            if not callable(getattr(item, "log_metrics", None)):
                raise TrainerArgumentError(
                    f"Trainer(logger=...) got a {type(item).__name__}, which is not a logger (it has no "
                    "log_metrics); pass a torchbolt.loggers.Logger such as TensorBoardLogger or CSVLogger, True, "
                    "or False."
                )


def check_manual_optimization(gradient_clip_val: float | None, accumulate_grad_batches: int) -> None:
    """Trainer arguments that manual optimization (`automatic_optimization = False`) cannot honour."""
    if gradient_clip_val is not None and gradient_clip_val > 0:
        raise TrainerArgumentError(
            f"Automatic gradient clipping is not supported for manual optimization. Remove "
            f"`Trainer(gradient_clip_val={gradient_clip_val})` or switch to automatic optimization "
            "(clip by hand with self.clip_gradients(opt, ...) in training_step)."
        )
    if accumulate_grad_batches != 1:
        raise TrainerArgumentError(
            f"Automatic gradient accumulation is not supported for manual optimization. Remove "
            f"`Trainer(accumulate_grad_batches={accumulate_grad_batches})` or switch to automatic optimization."
        )


def effective_value(name: str, value: Any) -> Any:
    """The value the loops use: None becomes the catalog's `effective_default` (e.g. limits -> 1.0)."""
    if value is None:
        default = TRAINER_ARGS_BY_NAME[name].effective_default
        if default:
            return float(default) if "." in default else int(default)
    return _normalize(name, value)


@lru_cache(maxsize=1)
def config_model() -> type:
    """The pydantic model of a validated Trainer configuration, built from the catalog (cached)."""
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = {a.name: (Any, a.default) for a in TRAINER_ARGS}
    return create_model(  # type: ignore[call-overload,no-any-return]
        "TrainerConfig",
        __config__=ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid"),
        **fields,
    )


def validate_trainer_args(values: dict[str, Any], unknown: Mapping[str, Any]) -> dict[str, Any]:
    """Check every Trainer argument; return the normalized values (see `build_config` for the frozen model)."""
    for name in unknown:
        raise unknown_argument_error(name)
    checked = {name: check_argument(TRAINER_ARGS_BY_NAME[name], value) for name, value in values.items()}
    check_barebones(checked)
    check_object_args(checked)
    return checked


def build_config(checked: Mapping[str, Any]) -> Any:
    """The frozen pydantic TrainerConfig of already-checked values (pydantic is imported here, on first use)."""
    return config_model()(**checked)
