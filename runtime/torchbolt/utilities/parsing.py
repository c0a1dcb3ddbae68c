"""Helpers about hyper-parameters and pickling at Lightning's `utilities.parsing` path."""

from __future__ import annotations

import pickle
from collections.abc import MutableMapping
from typing import Any

from torchbolt.utilities.hparams import AttributeDict, collect_init_args

__all__ = ["AttributeDict", "clean_namespace", "collect_init_args", "is_picklable"]


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
