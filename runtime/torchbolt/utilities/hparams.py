"""Hyper-parameter capture for `save_hyperparameters` (torch-free)."""

from __future__ import annotations

import copy
import inspect
import types
from argparse import Namespace
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: Hyper-parameters a builder (LightningCLI) hands to the class it instantiates, replacing the frame's.
_given_hparams: ContextVar[dict[str, Any] | None] = ContextVar("_given_hparams", default=None)


@contextmanager
def given_hyperparameters(hparams: dict[str, Any], instantiator: str) -> Iterator[None]:
    """While active, `save_hyperparameters()` records `hparams` plus `_instantiator` (the dotted name of the
    function that `load_from_checkpoint` calls to rebuild the object the same way)."""
    token = _given_hparams.set({**hparams, "_instantiator": instantiator})
    try:
        yield
    finally:
        _given_hparams.reset(token)


class AttributeDict(dict):  # type: ignore[type-arg]
    """A dict whose keys are also attributes: `hparams.lr` is `hparams["lr"]`."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(f"Missing attribute {key!r}") from exc

    def __setattr__(self, key: str, val: Any) -> None:
        self[key] = val

    def __delattr__(self, item: str) -> None:
        if item not in self:
            raise AttributeError(item)
        del self[item]

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as a call with a plain dict, which torch's weights-only loader can rebuild (it cannot
        # fill dict subclasses item by item)
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        if not self:
            return ""
        width = max(len(str(k)) for k in self) + 3
        rows = []
        for key, value in sorted(self.items(), key=lambda kv: str(kv[0])):
            label = '"' + str(key) + '":'
            rows.append(f"{label:{width}} {value}")
        return "\n".join(rows)


def _init_args_of_frame(frame: types.FrameType) -> tuple[dict[str, Any], str | None]:
    """The arguments of the `__init__` running in `frame`, and the name of its **kwargs parameter."""
    code = frame.f_code
    info = inspect.getargvalues(frame)
    local = info.locals
    names = list(info.args)
    if names and names[0] == "self":
        names = names[1:]
    values: dict[str, Any] = {n: local[n] for n in names if n in local}
    if info.varargs and local.get(info.varargs):
        values[info.varargs] = local[info.varargs]
    kwargs_name = info.keywords
    if kwargs_name and isinstance(local.get(kwargs_name), dict):
        values.update(local[kwargs_name])
    del code
    return values, kwargs_name


def collect_init_args(frame: types.FrameType, self_obj: object) -> dict[str, Any]:
    """Walk up from `frame` through the chain of `__init__` calls on `self_obj`, merging their arguments.

    Subclass arguments override those of base classes, so `super().__init__(**kwargs)` patterns work.
    """
    collected: list[dict[str, Any]] = []
    f: types.FrameType | None = frame
    while f is not None:
        if f.f_code.co_name != "__init__" or f.f_locals.get("self") is not self_obj:
            break
        args, _ = _init_args_of_frame(f)
        collected.append(args)
        f = f.f_back
    merged: dict[str, Any] = {}
    for args in collected:  # innermost first, so the most-derived class's values win
        merged.update(args)
    merged.pop("__class__", None)
    return merged


def select_hparams(
    args: tuple[Any, ...], init_args: dict[str, Any], ignore: Sequence[str] | str | None
) -> tuple[dict[str, Any], str | None]:
    """The hyper-parameters that `save_hyperparameters(*args, ignore=...)` stores, and their name."""
    if isinstance(ignore, str):
        ignore = [ignore]
    ignored = set(ignore or ())
    unknown = ignored - set(init_args) if init_args else set()
    if unknown and not args:
        # Lightning silently drops unknown names; a typo here would silently save too much, so say so.
        import warnings

        warnings.warn(
            f"save_hyperparameters(ignore=...) names {sorted(unknown)} which are not __init__ arguments "
            f"(arguments: {sorted(init_args)}).",
            stacklevel=3,
        )
    if not args:
        return {k: v for k, v in init_args.items() if k not in ignored}, "kwargs"
    if len(args) == 1 and not isinstance(args[0], str):
        obj = args[0]
        if isinstance(obj, Namespace):
            return dict(vars(obj)), None
        if isinstance(obj, (dict, MutableMapping)):
            return dict(obj), None
        if hasattr(obj, "_content") and hasattr(obj, "keys"):  # OmegaConf container
            return dict(obj), None
        raise ValueError(
            f"save_hyperparameters() got a {type(obj).__name__}; pass names of __init__ arguments, a dict or a "
            "Namespace."
        )
    hp: dict[str, Any] = {}
    for name in args:
        if not isinstance(name, str):
            raise ValueError(
                f"save_hyperparameters() takes names of __init__ arguments as strings, got {name!r}."
            )
        if name not in init_args:
            raise ValueError(
                f"save_hyperparameters({name!r}): {name!r} is not an argument of __init__ "
                f"(arguments: {sorted(init_args)})."
            )
        if name not in ignored:
            hp[name] = init_args[name]
    return hp, "kwargs"


class HyperparametersMixin:
    """Gives a class `save_hyperparameters()`, `hparams` and `hparams_initial`."""

    __jit_unused_properties__: list[str] = ["hparams", "hparams_initial"]

    def save_hyperparameters(
        self,
        *args: Any,
        ignore: Sequence[str] | str | None = None,
        frame: types.FrameType | None = None,
        logger: bool = True,
    ) -> None:
        """Store `__init__` arguments (all, or the named ones, or a dict/Namespace) in `self.hparams`.

        Call it in `__init__`; the values go into checkpoints and, with `logger=True`, to the loggers.
        """
        object.__setattr__(self, "_log_hyperparams", logger)
        given = _given_hparams.get()
        if given is None and frame is None:
            current = inspect.currentframe()
            frame = current.f_back if current is not None else None
        if given is not None:
            init_args = dict(given)
        else:
            init_args = collect_init_args(frame, self) if frame is not None else {}
        hp, name = select_hparams(args, init_args, ignore)
        if name is not None:
            object.__setattr__(self, "_hparams_name", name)
        self._set_hparams(hp)
        object.__setattr__(self, "_hparams_initial", copy.deepcopy(self.hparams))

    def _set_hparams(self, hp: dict[str, Any]) -> None:
        hparams = AttributeDict(hp)
        existing = self.__dict__.get("_hparams")
        if isinstance(existing, AttributeDict):
            existing.update(hparams)
        else:
            object.__setattr__(self, "_hparams", hparams)

    @property
    def hparams(self) -> AttributeDict:
        """The saved hyper-parameters (an AttributeDict; empty until save_hyperparameters is called)."""
        if "_hparams" not in self.__dict__:
            object.__setattr__(self, "_hparams", AttributeDict())
        return self.__dict__["_hparams"]

    @property
    def hparams_initial(self) -> AttributeDict:
        """A copy of the hyper-parameters as first saved, unaffected by later changes to `hparams`."""
        initial = self.__dict__.get("_hparams_initial")
        return copy.deepcopy(initial) if initial is not None else AttributeDict()
