"""`CombinedLoader`: iterate several dataloaders (a dict, list or tuple of them, nested) together.

Each item is `(batch, batch_idx, dataloader_idx)`. In the modes `min_size`, `max_size_cycle` and
`max_size`, `batch` has the shape of the collection given (a dict of batches for a dict of loaders)
and `dataloader_idx` is 0; in `sequential`, the loaders are read one after the other and `batch` is
one loader's batch, `dataloader_idx` that loader's position.

- `min_size`: stops when the shortest loader ends.
- `max_size_cycle`: stops when the longest ends; shorter ones start over until then.
- `max_size`: stops when the longest ends; exhausted ones give None.
- `sequential`: each loader in full (up to its limit, if `limits` is set), one after the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr

__all__ = ["MODES", "CombinedLoader"]

Mode = Literal["min_size", "max_size_cycle", "max_size", "sequential"]
MODES: tuple[str, ...] = ("min_size", "max_size_cycle", "max_size", "sequential")
_Item = tuple[Any, int, int]


# ----------------------------------------------------------------------------------------------------
# Collections of loaders, flattened and rebuilt (dicts, lists and tuples, nested; anything else is a leaf)
# ----------------------------------------------------------------------------------------------------
def _flatten(tree: Any) -> tuple[list[Any], Any]:
    """(the leaves in order, a spec that `_unflatten` turns back into the same shape)."""
    if isinstance(tree, Mapping):
        leaves: list[Any] = []
        specs = []
        for key, value in tree.items():
            sub, spec = _flatten(value)
            leaves += sub
            specs.append((key, spec, len(sub)))
        return leaves, (type(tree), specs)
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):  # namedtuples are data, keep whole
        leaves = []
        specs = []
        for value in tree:
            sub, spec = _flatten(value)
            leaves += sub
            specs.append((None, spec, len(sub)))
        return leaves, (type(tree), specs)
    return [tree], None


def _unflatten(leaves: list[Any], spec: Any) -> Any:
    if spec is None:
        return leaves[0]
    kind, children = spec
    out = []
    start = 0
    for key, sub, count in children:
        out.append((key, _unflatten(leaves[start:start + count], sub)))
        start += count
    if issubclass(kind, Mapping):
        return {k: v for k, v in out} if kind is dict else kind((k, v) for k, v in out)
    values = [v for _, v in out]
    return values if kind is list else kind(values)


def _length(iterable: Any) -> int | float:
    """len(iterable), or inf when it has none."""
    try:
        return len(iterable)
    except (TypeError, NotImplementedError):
        return float("inf")


# ----------------------------------------------------------------------------------------------------
# One iterator per mode, over the flat list of loaders
# ----------------------------------------------------------------------------------------------------
class _ModeIterator(Iterator[_Item]):
    def __init__(self, iterables: list[Iterable[Any]], limits: list[int | float] | None) -> None:
        self.iterables = iterables
        self.limits = limits
        self.iterators: list[Iterator[Any]] = []
        self.batch_idx = 0

    def start(self) -> None:
        self.iterators = [iter(it) for it in self.iterables]
        self.batch_idx = 0

    def lengths(self) -> list[int | float]:
        lengths = [_length(it) for it in self.iterables]
        if self.limits is None:
            return lengths
        return [min(n, limit) for n, limit in zip(lengths, self.limits, strict=True)]

    def _emit(self, batch: Any, dataloader_idx: int = 0) -> _Item:
        index = self.batch_idx
        self.batch_idx += 1
        return batch, index, dataloader_idx

    def __len__(self) -> int:
        raise NotImplementedError


class _MinSize(_ModeIterator):
    def __next__(self) -> _Item:
        return self._emit([next(it) for it in self.iterators])

    def __len__(self) -> int:
        return int(min(self.lengths()))


class _MaxSizeCycle(_ModeIterator):
    def start(self) -> None:
        super().start()
        self.finished = [False] * len(self.iterables)

    def __next__(self) -> _Item:
        batch = []
        for i, it in enumerate(self.iterators):
            try:
                batch.append(next(it))
            except StopIteration:
                self.finished[i] = True
                if all(self.finished):
                    raise
                self.iterators[i] = iter(self.iterables[i])  # cycle the shorter loader
                batch.append(next(self.iterators[i]))
        return self._emit(batch)

    def __len__(self) -> int:
        return int(max(self.lengths()))


class _MaxSize(_ModeIterator):
    def __next__(self) -> _Item:
        batch: list[Any] = []
        done = 0
        for it in self.iterators:
            try:
                batch.append(next(it))
            except StopIteration:
                batch.append(None)
                done += 1
        if done == len(self.iterators):
            raise StopIteration
        return self._emit(batch)

    def __len__(self) -> int:
        return int(max(self.lengths()))


class _Sequential(_ModeIterator):
    def start(self) -> None:
        self.current = 0
        self.batch_idx = 0
        self._open_current()

    def _open_current(self) -> None:
        # one loader at a time, so only one set of worker processes runs
        self.iterators = [iter(self.iterables[self.current])] if self.current < len(self.iterables) else []

    def _advance(self) -> None:
        self.current += 1
        self.batch_idx = 0
        self._open_current()

    def __next__(self) -> _Item:
        while self.current < len(self.iterables):
            if self.limits is not None and self.batch_idx >= self.limits[self.current]:
                self._advance()
                continue
            try:
                batch = next(self.iterators[0])
            except StopIteration:
                self._advance()
                continue
            return self._emit(batch, self.current)
        raise StopIteration

    def __len__(self) -> int:
        return int(sum(self.lengths()))


_ITERATORS: dict[str, type[_ModeIterator]] = {
    "min_size": _MinSize, "max_size_cycle": _MaxSizeCycle, "max_size": _MaxSize, "sequential": _Sequential,
}


class CombinedLoader(Iterable[_Item]):
    """Iterates `iterables` (one iterable, or a dict/list/tuple of them) together according to `mode`.

    Call `iter()` before `len()`: the length depends on the mode and on `limits`.
    """

    def __init__(self, iterables: Any, mode: Mode = "min_size") -> None:
        if mode not in _ITERATORS:
            raise ValueError(f"CombinedLoader: unsupported mode {mode!r}; choose one of {', '.join(MODES)}")
        self._iterables = iterables
        self._flattened, self._spec = _flatten(iterables)
        self._mode: str = mode
        self._iterator: _ModeIterator | None = None
        self._limits: list[int | float] | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def iterables(self) -> Any:
        """The collection of iterables, as given."""
        return self._iterables

    @property
    def flattened(self) -> list[Any]:
        """The iterables as a flat list (in the collection's order)."""
        return self._flattened

    @flattened.setter
    def flattened(self, flattened: list[Any]) -> None:
        if len(flattened) != len(self._flattened):
            raise ValueError(f"CombinedLoader.flattened: expected {len(self._flattened)} iterables, "
                             f"got {len(flattened)}")
        self._flattened = list(flattened)
        self._iterables = _unflatten(self._flattened, self._spec)

    def _map(self, fn: Callable[[Any], Any]) -> Any:
        return _unflatten([fn(it) for it in self._flattened], self._spec)

    @property
    def sampler(self) -> Any:
        """Each loader's sampler, in the collection's shape (None for iterables without one)."""
        return self._map(lambda it: getattr(it, "sampler", None))

    @property
    def batch_sampler(self) -> Any:
        return self._map(lambda it: getattr(it, "batch_sampler", None))

    @property
    def limits(self) -> list[int | float] | None:
        """The most batches to take from each iterable (set by the Trainer from limit_*_batches)."""
        return self._limits

    @limits.setter
    def limits(self, limits: int | float | list[int | float] | None) -> None:
        if isinstance(limits, (int, float)):
            limits = [limits] * len(self._flattened)
        elif limits is not None and len(limits) != len(self._flattened):
            raise ValueError(f"CombinedLoader.limits: expected {len(self._flattened)} limits (one per iterable), "
                             f"got {len(limits)}")
        self._limits = list(limits) if limits is not None else None

    def __iter__(self) -> CombinedLoader:
        iterator = _ITERATORS[self._mode](self._flattened, self._limits)
        iterator.start()
        self._iterator = iterator
        return self

    def __next__(self) -> _Item:
        if self._iterator is None:
            raise RuntimeError("CombinedLoader: call iter() before next()")
        batch, batch_idx, dataloader_idx = next(self._iterator)
        if self._mode != "sequential":
            batch = _unflatten(batch, self._spec)
        return batch, batch_idx, dataloader_idx

    def __len__(self) -> int:
        if self._iterator is None:
            raise RuntimeError("CombinedLoader: call iter(combined_loader) before len(combined_loader)")
        return len(self._iterator)

    def reset(self) -> None:
        """Forget the current iteration and stop the loaders' worker processes."""
        self._iterator = None
        for it in self._flattened:
            iterator = getattr(it, "_iterator", None)
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if callable(shutdown):
                shutdown()
            if iterator is not None and hasattr(it, "_iterator"):
                it._iterator = None

    def _dataset_length(self) -> int:
        """Total length of the loaders' datasets, combined as the mode combines loaders."""
        lengths = [_length(getattr(it, "dataset", it)) for it in self._flattened]
        combine = {"min_size": min, "max_size_cycle": max, "max_size": max, "sequential": sum}[self._mode]
        return int(combine(lengths))


# ----------------------------------------------------------------------------------------------------
# How the Trainer reads a CombinedLoader
# ----------------------------------------------------------------------------------------------------
class TrainBatches(Iterable[Any]):
    """The training loop's view of a CombinedLoader: its batches only (the loop counts batch_idx itself),
    with a length known before iterating."""

    def __init__(self, combined: CombinedLoader) -> None:
        self.combined = combined

    def __iter__(self) -> Iterator[Any]:
        for batch, _batch_idx, _dataloader_idx in iter(self.combined):
            yield batch

    def __len__(self) -> int:
        combined = self.combined
        try:
            return len(_ITERATORS[combined.mode](combined.flattened, combined.limits))
        except OverflowError:  # int(inf): an iterable without a length decides the total
            raise TypeError("this CombinedLoader has no length: an iterable in it has none") from None


def evaluation_loaders(combined: CombinedLoader, stage: str) -> list[Any]:
    """The loaders an evaluation/predict loop reads one after the other (dataloader_idx = position).

    Like Lightning, evaluation reads a CombinedLoader only in 'sequential' mode.
    """
    if combined.mode != "sequential":
        raise ValueError(f"`trainer.{stage}` reads a CombinedLoader only in mode='sequential' (got "
                         f"mode={combined.mode!r}); build it with CombinedLoader(loaders, mode='sequential')")
    return list(combined.flattened)


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
