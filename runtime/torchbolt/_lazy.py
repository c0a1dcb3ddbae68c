"""PEP 562 lazy attributes for torchbolt's packages, so importing a package imports nothing heavy."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, table: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: a name in `table` comes from the module it maps to, any other
    public name from the subpackage of that name if there is one (so packages added later work too), and a
    Lightning name torchbolt lacks raises NotProvidedError naming the alternative. Found values are cached
    in `namespace` (the package's globals)."""

    def attribute(name: str) -> Any:
        module = table.get(name)
        if module is not None:
            return getattr(_import(module, name), name)
        if name.isidentifier() and not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}"):
            return _import(f"{package}.{name}", name)
        raise AttributeError(name)

    def _import(module: str, name: str) -> Any:
        # An AttributeError raised while the module runs is a broken import, not a missing name: as an
        # AttributeError it would be reported as "not provided" (or vanish under hasattr).
        try:
            return importlib.import_module(module)
        except AttributeError as exc:
            raise ImportError(f"importing {module} (for {package}.{name}) failed: {exc!r}") from exc

    def __getattr__(name: str) -> Any:
        from torchbolt.compat.unsupported import module_getattr

        value = module_getattr(package, attribute)(name)
        namespace[name] = value
        return value

    return __getattr__


def not_provided_getattr(module: str) -> Callable[[str], Any]:
    """A module `__getattr__` for a public module without lazy attributes: a Lightning name torchbolt lacks
    raises NotProvidedError naming the feature and its alternative, anything else a plain AttributeError."""

    def __getattr__(name: str) -> Any:
        from torchbolt.compat.unsupported import module_getattr

        return module_getattr(module)(name)

    return __getattr__
