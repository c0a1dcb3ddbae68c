"""Walking nested batches: tuples, lists, dicts, namedtuples and dataclasses holding tensors."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor


def _is_namedtuple(obj: object) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_asdict") and hasattr(obj, "_fields")


def apply_to_collection(data: Any, dtype: type | tuple[type, ...], function: Callable[..., Any],
                        *args: Any, **kwargs: Any) -> Any:
    """Return `data` with `function` applied to every element of type `dtype`, keeping the containers' types."""
    if isinstance(data, dtype):
        return function(data, *args, **kwargs)
    if isinstance(data, Mapping):
        items = [(k, apply_to_collection(v, dtype, function, *args, **kwargs)) for k, v in data.items()]
        if isinstance(data, dict) and type(data) is not dict:
            try:
                out = type(data)()
                out.update(items)
                return out
            except TypeError:  # e.g. defaultdict needs its factory
                return type(data)(getattr(data, "default_factory", None), items)  # type: ignore[call-arg,call-overload]
        return dict(items) if type(data) is dict else type(data)(items)  # type: ignore[call-arg]
    if _is_namedtuple(data):
        return type(data)(*(apply_to_collection(v, dtype, function, *args, **kwargs) for v in data))
    if isinstance(data, (list, tuple)) and not isinstance(data, str):
        out_seq = [apply_to_collection(v, dtype, function, *args, **kwargs) for v in data]
        return type(data)(out_seq)  # type: ignore[call-arg]
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        result = copy.copy(data)  # shallow copy keeps init=False fields and the class; then swap the leaves
        for f in dataclasses.fields(data):
            value = getattr(data, f.name)
            new = apply_to_collection(value, dtype, function, *args, **kwargs)
            if new is not value:
                object.__setattr__(result, f.name, new)  # works for frozen dataclasses too
        return result
    return data


def move_data_to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor (and object with a `.to`) inside `batch` to `device`; other values are kept."""
    if isinstance(device, str):
        device = torch.device(device)
    kind = type(batch)
    if kind is tuple or kind is list:
        # the usual (x, y) batch, every step: a plain loop, no generic walk and no per-tensor call
        non_blocking = device.type == "cuda"
        moved = []
        for t in batch:
            if not isinstance(t, Tensor):
                break
            # already there: `to` would return the tensor itself, after a call into torch
            moved.append(t if t.device == device else t.to(device, non_blocking=non_blocking))
        else:
            return kind(moved)

    def _to(t: Any) -> Any:
        moved = t.to(device, non_blocking=(device.type == "cuda"))
        return t if moved is None else moved

    return apply_to_collection(batch, Tensor, _to)


def convert_tensors_to_scalars(data: Any) -> Any:
    """Replace each one-element tensor in `data` by its Python number."""

    def _item(t: Tensor) -> Any:
        if t.numel() != 1:
            raise ValueError(f"The metric `{t}` does not contain a single element, thus it cannot be converted to a "
                             "scalar; log a reduced value (for instance `.mean()`).")
        return t.item()

    return apply_to_collection(data, Tensor, _item)


def extract_batch_size(batch: Any) -> int:
    """The batch size of `batch`: the first dimension of the first tensor found (1 for a 0-d tensor)."""
    found = _find_batch_size(batch)
    if found is None:
        raise RuntimeError(
            "Could not infer the batch size for self.log(..., on_epoch=True) from the batch; pass "
            "self.log(..., batch_size=N)."
        )
    return found


def _find_batch_size(batch: Any) -> int | None:
    if isinstance(batch, Tensor):
        return 1 if batch.ndim == 0 else int(batch.size(0))
    if type(batch) is list or type(batch) is tuple:
        # what default_collate yields; checked before the slower abstract-class tests below
        for v in batch:
            found = _find_batch_size(v)
            if found is not None:
                return found
        return None
    if isinstance(batch, (str, bytes)):
        return len(batch)
    if isinstance(batch, Mapping):
        for v in batch.values():
            found = _find_batch_size(v)
            if found is not None:
                return found
        return None
    if isinstance(batch, Sequence):
        for v in batch:
            found = _find_batch_size(v)
            if found is not None:
                return found
        return None
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        for f in dataclasses.fields(batch):
            found = _find_batch_size(getattr(batch, f.name))
            if found is not None:
                return found
    return None
