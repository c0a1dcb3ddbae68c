"""The engine a torchbolt process runs user code on: torchbolt itself, or the real Lightning.

`activate("torchbolt")` installs the import hook (Lightning imports resolve to torchbolt);
`activate("lightning")` leaves imports alone and checks that Lightning is installed, so a user can
compare the two on the same unmodified code. `framework()` is then the package whose
`LightningModule`, `Trainer`, ... the command line uses.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from types import ModuleType
from typing import Any

from torchbolt.compat import hook

__all__ = ["ENGINES", "ENGINE_ENV", "EngineError", "activate", "current_engine", "deactivate", "framework", "split_engine_option"]

ENGINES = ("torchbolt", "lightning")
#: Environment variable with the default engine (the editor's run setting travels this way too).
ENGINE_ENV = "TORCHBOLT_ENGINE"

_engine: str | None = None


class EngineError(ValueError):
    """A bad or unavailable engine choice; the message says how to fix it."""


def check_engine(name: str) -> str:
    """`name` if it is a known engine, else EngineError listing the choices."""
    if name not in ENGINES:
        raise EngineError(f"--engine: unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    return name


def lightning_installed() -> bool:
    """Whether the real Lightning (`lightning` or `pytorch_lightning`) can be imported."""
    if hook.active():
        return False  # the names are ours now; nothing real to run on
    for name in ("lightning", "pytorch_lightning"):
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def activate(engine: str | None = None) -> str:
    """Select the engine for this process (default: $TORCHBOLT_ENGINE, else torchbolt); returns it."""
    global _engine
    name = check_engine(engine or os.environ.get(ENGINE_ENV) or "torchbolt")
    if name == "torchbolt":
        if hook.real_lightning_loaded():
            # Only in an embedding process (a test calling the CLI in-process): the real Lightning is
            # already there, so leave imports alone; a class from it gets engine_mismatch_hint's message.
            warnings.warn("the real Lightning is already imported in this process, so its imports cannot "
                          "resolve to torchbolt here", RuntimeWarning, stacklevel=2)
        else:
            hook.install()
    elif not lightning_installed():
        raise EngineError("--engine lightning: Lightning is not installed in this environment; install it "
                          "(`pip install lightning`) or run on torchbolt (drop --engine)")
    _engine = name
    return name


def deactivate() -> None:
    """Undo `activate` (remove the hook and its aliases): for processes that run more than one command."""
    global _engine
    hook.uninstall()
    _engine = None


def current_engine() -> str:
    """The engine selected by `activate` ("torchbolt" when none was)."""
    return _engine or "torchbolt"


def framework() -> ModuleType:
    """The package providing LightningModule, Trainer, ... for the selected engine."""
    if current_engine() == "lightning":
        try:
            return importlib.import_module("lightning.pytorch")
        except ImportError:
            return importlib.import_module("pytorch_lightning")
    return importlib.import_module("torchbolt")


def split_engine_option(argv: list[str]) -> tuple[str | None, list[str]]:
    """(`--engine` value, the other arguments) from a command line; the last `--engine` wins."""
    engine: str | None = None
    rest: list[str] = []
    it = iter(range(len(argv)))
    for i in it:
        arg = argv[i]
        if arg == "--engine":
            if i + 1 >= len(argv):
                raise EngineError(f"--engine needs a value: one of {', '.join(ENGINES)}")
            engine = argv[i + 1]
            next(it, None)
        elif arg.startswith("--engine="):
            engine = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return (check_engine(engine) if engine is not None else None), rest


def callback_for_engine(callback: Any) -> Any:
    """`callback` (a torchbolt Callback) usable by the selected engine's Trainer.

    Lightning's Trainer accepts only its own Callback subclasses; the hooks have the same names and
    signatures, so a subclass of both serves (used for the editor's event stream under --engine lightning).
    """
    if current_engine() != "lightning":
        return callback
    base = framework().Callback
    if isinstance(callback, base):
        return callback
    cls = type(callback)
    bridged = type(cls.__name__, (cls, base), {"__module__": cls.__module__})
    callback.__class__ = bridged
    return callback


def engine_mismatch_hint(cls: Any, base_name: str) -> str:
    """A hint when `cls` derives from the other engine's `base_name` (torchbolt's vs Lightning's)."""
    for klass in getattr(cls, "__mro__", ())[1:]:
        if klass.__name__ != base_name:
            continue
        from_torchbolt = klass.__module__.split(".")[0] == "torchbolt"
        if current_engine() == "lightning" and from_torchbolt:
            return (f" ({cls.__name__} derives from torchbolt's {base_name}; --engine lightning runs Lightning "
                    "classes: import them from lightning.pytorch, or drop --engine lightning)")
        if current_engine() == "torchbolt" and not from_torchbolt:
            return (f" ({cls.__name__} derives from {klass.__module__}.{base_name}, which was imported before "
                    "torchbolt could stand in for Lightning; run it with `torchbolt run`/`torchbolt fit`, or "
                    "pass --engine lightning)")
    return ""
