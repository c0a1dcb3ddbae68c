"""The torch-free catalog: everything torchbolt knows about the Lightning API, as typed data.

One source of truth. The Trainer validates its arguments from it, the loop dispatches hook points from
it, and the language server completes, hovers and diagnoses from it. Importing this package never
imports torch (a test holds that), so the language server can use it freely.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable

from .args import (
    ACCELERATORS,
    ALWAYS_MONITORABLE,
    CALLBACKS,
    CALLBACKS_BY_NAME,
    ENTRY_POINTS,
    GRADIENT_CLIP_ALGORITHMS,
    LOG_ARGS,
    LOG_DICT_ARGS,
    LOGGERS,
    LR_SCHEDULER_CONFIG_KEYS,
    PRECISION_ALIASES,
    PRECISIONS,
    PROFILER_CLASSES,
    PROFILERS,
    STRATEGIES,
    TRAINER_ARGS,
    TRAINER_ARGS_BY_NAME,
    TUNER_METHODS,
)
from .hardware import (
    PLUGIN_CLASSES,
    PLUGIN_KINDS,
    STRATEGY_NAMES,
    UNAVAILABLE_ACCELERATORS,
    UNAVAILABLE_PRECISIONS,
    UNAVAILABLE_STRATEGIES,
)
from .hooks import (
    CALLBACK_HOOKS,
    DATAMODULE_HOOKS,
    EVAL_MODE_HOOKS,
    HOOK_POINTS,
    HOOKS_BY_OWNER,
    LOG_FORBIDDEN,
    LOG_RULES,
    MODULE_HOOKS,
    STEP_CALL_ARGS,
    TRAIN_MODE_HOOKS,
)
from .removed import (
    MODULE_MEMBERS,
    PRECISION_REWRITES,
    REMOVED_HOOK_PARAMS,
    REMOVED_HOOKS,
    REMOVED_STRATEGIES,
    REMOVED_TRAINER_ARGS,
)
from .schema import REQUIRED, Arg, CallbackSpec, Hook, HookPoint, LogRule, Member, Param, Removed

__all__ = [
    "ACCELERATORS", "ALWAYS_MONITORABLE", "CALLBACKS", "CALLBACKS_BY_NAME", "CALLBACK_HOOKS",
    "DATAMODULE_HOOKS", "ENTRY_POINTS", "EVAL_MODE_HOOKS", "GRADIENT_CLIP_ALGORITHMS", "HOOKS_BY_OWNER",
    "HOOK_POINTS", "LOGGERS", "LOG_ARGS", "LOG_DICT_ARGS", "LOG_FORBIDDEN", "LOG_RULES",
    "LR_SCHEDULER_CONFIG_KEYS", "MODULE_HOOKS", "MODULE_MEMBERS", "PRECISIONS", "PRECISION_ALIASES",
    "PRECISION_REWRITES", "PROFILERS", "PROFILER_CLASSES", "REMOVED_HOOKS", "REMOVED_HOOK_PARAMS", "REMOVED_STRATEGIES",
    "REMOVED_TRAINER_ARGS", "REQUIRED", "STEP_CALL_ARGS", "STRATEGIES", "TRAINER_ARGS",
    "TRAINER_ARGS_BY_NAME", "TRAIN_MODE_HOOKS", "TUNER_METHODS", "Arg", "CallbackSpec", "Hook", "HookPoint",
    "LogRule", "Member", "Param", "Removed", "did_you_mean", "log_rule",
    "PLUGIN_CLASSES", "PLUGIN_KINDS", "STRATEGY_NAMES", "UNAVAILABLE_ACCELERATORS", "UNAVAILABLE_PRECISIONS",
    "UNAVAILABLE_STRATEGIES",
]


def did_you_mean(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest candidate to a misspelled name, or None when nothing is close."""
    return _closest(name, tuple(candidates), cutoff)


@functools.lru_cache(maxsize=4096)
def _closest(name: str, candidates: tuple[str, ...], cutoff: float) -> str | None:
    # cached: a linter asks the same question for every copy of the same typo (thousands in a big file)
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=cutoff)
    return matches[0] if matches else None


def log_rule(hook_name: str) -> LogRule | None:
    """Where `self.log` stands in a hook: its rule, or None when logging is not allowed there."""
    return LOG_RULES.get(hook_name)
