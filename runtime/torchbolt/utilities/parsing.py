"""Helpers about hyper-parameters and pickling at Lightning's `utilities.parsing` path."""

from __future__ import annotations

import pickle
import types
from collections.abc import MutableMapping
from typing import Any

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.utilities.hparams import AttributeDict, _init_args_of_frame
from torchbolt.utilities.rank_zero import rank_zero_warn

__all__ = ["AttributeDict", "clean_namespace", "get_init_args", "is_picklable", "lightning_getattr",
           "lightning_hasattr", "lightning_setattr", "rank_zero_warn"]


def is_picklable(obj: object) -> bool:
    """Whether `obj` survives `pickle.dumps` (what hyper-parameters must do to be saved in a checkpoint)."""
    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError, RecursionError):
        return False
    return True


def clean_namespace(hparams: MutableMapping[str, Any]) -> None:
    """Drop the entries of `hparams` that cannot be pickled (in place)."""
    for key in [k for k, v in hparams.items() if not is_picklable(v)]:
        del hparams[key]


def get_init_args(frame: types.FrameType) -> dict[str, Any]:
    """The arguments of the `__init__` running in `frame` (its **kwargs merged in)."""
    args, _ = _init_args_of_frame(frame)
    return args


def _holders(model: Any, attribute: str) -> list[Any]:
    """Where `attribute` lives, in lookup order: the model, its hparams, the trainer's datamodule and its hparams."""
    found: list[Any] = []
    if hasattr(model, attribute):
        found.append(model)
    hparams = getattr(model, "hparams", None)
    if hparams is not None and attribute in hparams:
        found.append(hparams)
    trainer = getattr(model, "_trainer", None)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    if datamodule is not None:
        if hasattr(datamodule, attribute):
            found.append(datamodule)
        dm_hparams = getattr(datamodule, "hparams", None)
        if dm_hparams is not None and attribute in dm_hparams:
            found.append(dm_hparams)
    return found


def lightning_hasattr(model: Any, attribute: str) -> bool:
    """Whether `attribute` is on the model, in its hparams, or on the datamodule (or its hparams)."""
    return bool(_holders(model, attribute))


def lightning_getattr(model: Any, attribute: str) -> Any:
    """`attribute` from the last of: the model, its hparams, the datamodule, its hparams (as Lightning looks)."""
    holders = _holders(model, attribute)
    if not holders:
        raise AttributeError(f"{attribute} is neither an attribute of the model nor in its hparams, nor on the "
                             "datamodule")
    holder = holders[-1]
    return holder[attribute] if isinstance(holder, dict) else getattr(holder, attribute)


def lightning_setattr(model: Any, attribute: str, value: Any) -> None:
    """Set `attribute` everywhere `lightning_hasattr` finds it."""
    holders = _holders(model, attribute)
    if not holders:
        raise AttributeError(f"{attribute} is neither an attribute of the model nor in its hparams, nor on the "
                             "datamodule")
    for holder in holders:
        if isinstance(holder, dict):
            holder[attribute] = value
        else:
            setattr(holder, attribute, value)


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
