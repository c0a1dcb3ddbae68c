"""Pause Python's cyclic garbage collector while big syntax trees are built and walked.

An `ast` of a 20,000-line file is ~300,000 objects. Building one while another is alive (the previous
parse, kept for incremental re-parsing) sets off full collections that walk every live tree: a parse
then costs 3-4x its own time. ASTs and the facts extracted from them hold no reference cycles
(reference counting frees them), so those passes find nothing. The pause is counted across threads:
the collector comes back when the last pause ends, and only if it was on before the first.

When it comes back, the objects alive at that moment (the new tree among them) are frozen
(`gc.freeze`): otherwise the first collections after the pause walk the whole new tree once per
generation (young, middle, then a full pass: ~300 ms after a 20,000-line parse, right when the request
that needed the parse is being answered). Frozen objects are still freed by reference counting when
unreferenced; only reference cycles among them wait, until every UNFREEZE_EVERY-th pause gives the
frozen objects back to the collector's oldest generation, where its own heuristics handle them.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_freezes = 0
#: Pauses between giving the frozen objects back to the collector (bounds what reference cycles can hold).
UNFREEZE_EVERY = 32


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic GC off (thread-safe, nestable)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                _settle()
                gc.enable()


def _settle() -> None:
    """Freeze what is alive now, or (every UNFREEZE_EVERY-th time) hand the frozen objects back."""
    global _freezes
    _freezes += 1
    if _freezes >= UNFREEZE_EVERY:
        _freezes = 0
        gc.unfreeze()
    else:
        gc.freeze()


__all__ = ["paused_gc"]
