"""Deferred imports for modules the server needs only on some paths (runs, quick fixes).

`initialize` must be answered within a second of process start, so a module that costs hundreds of
milliseconds to import (pydantic models, libcst) is bound to a stand-in that imports it on first
attribute access instead of at server start.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for `module`; the first attribute access imports it (thread-safe: the import lock)."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        module = self._module
        if module is None:
            module = importlib.import_module(self._name)
            self._module = module
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> Any:
    """A stand-in for `import name` that imports on first use (typed Any: bind the real module under
    TYPE_CHECKING for type checkers)."""
    return LazyModule(name)


__all__ = ["LazyModule", "lazy_module"]
