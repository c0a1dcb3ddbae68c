"""The import hook that makes Lightning's import names resolve to torchbolt (inside torchbolt's processes).

One `sys.meta_path` finder, installed by `torchbolt fit|validate|test|predict|run` and the editor's runs
(never by `import torchbolt`): `lightning.pytorch.X` and `pytorch_lightning.X` import `torchbolt.X` (the
same module object, so `isinstance` and class identity hold), `lightning` gives a small namespace with
`LightningModule`, `Trainer`, ... and `lightning.pytorch`; Lightning packages torchbolt does not provide
(`lightning.fabric`, ...) fail at import with a message saying so. Only the import system writes
`sys.modules`; the finder merely answers `find_spec`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from torchbolt.compat.paths import OTHER_LIGHTNING_PACKAGES, PACKAGE_LIKE, lightning_relative, torchbolt_path

__all__ = ["LightningAliasFinder", "active", "install", "real_lightning_loaded", "uninstall"]

#: The module that stands for the top-level `lightning` package.
LIGHTNING_ROOT = "torchbolt.compat.lightning_root"
_ROOT_NAMES = ("lightning", "pytorch_lightning")


class _AliasLoader(importlib.abc.Loader):
    """Loads an alias name as an existing torchbolt module (the same object, not a copy)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._own_spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self._own_spec = module.__dict__.get("__spec__")
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system has just set the alias spec on the shared module; give it back its own so
        # reload/pickle/inspect still see torchbolt's real module.
        if self._own_spec is not None:
            module.__spec__ = self._own_spec


class LightningAliasFinder(importlib.abc.MetaPathFinder):
    """Answers imports of `lightning`, `lightning.*`, `pytorch_lightning` and `pytorch_lightning.*`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "lightning":
            return self._spec(fullname, LIGHTNING_ROOT, package=True)
        rel = lightning_relative(fullname)
        if rel is None:
            if fullname.startswith("lightning."):
                package = fullname.split(".")[1]
                why = OTHER_LIGHTNING_PACKAGES.get(package, "torchbolt provides only `lightning.pytorch`")
                raise ModuleNotFoundError(f"{fullname} is not provided by torchbolt: {why}.", name=fullname)
            return None
        module_name = torchbolt_path(rel)
        if importlib.util.find_spec(module_name) is None:
            from torchbolt.compat.unsupported import module_not_provided_message

            raise ModuleNotFoundError(module_not_provided_message(fullname, rel), name=fullname)
        return self._spec(fullname, module_name, package=rel in PACKAGE_LIKE)

    @staticmethod
    def _spec(fullname: str, module_name: str, package: bool) -> importlib.machinery.ModuleSpec:
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(module_name), is_package=package)
        return spec


_finder: LightningAliasFinder | None = None


def active() -> bool:
    """Whether the hook is installed in this process."""
    return _finder is not None and _finder in sys.meta_path


def install() -> None:
    """Make Lightning's import names resolve to torchbolt from now on in this process (idempotent).

    Raises RuntimeError when the real Lightning was already imported: objects from both would mix.
    """
    global _finder
    if active():
        return
    if real_lightning_loaded():
        loaded = [n for n in _ROOT_NAMES if n in sys.modules]
        raise RuntimeError(f"{loaded[0]} (the real Lightning) is already imported in this process, so "
                           "torchbolt cannot stand in for it; install the hook before anything imports "
                           "Lightning, or run with the real Lightning (--engine lightning)")
    _finder = LightningAliasFinder()
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Remove the hook and forget the aliases it created (for tests and embedding)."""
    global _finder
    if _finder is not None and _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    _finder = None
    for name in [n for n in sys.modules if n.split(".")[0] in _ROOT_NAMES]:
        if _is_alias(sys.modules[name]):
            del sys.modules[name]


def real_lightning_loaded() -> bool:
    """Whether the real `lightning` / `pytorch_lightning` is already imported in this process."""
    return any(n in sys.modules and not _is_alias(sys.modules[n]) for n in _ROOT_NAMES)


def _is_alias(module: Any) -> bool:
    name = getattr(module, "__name__", "")
    return isinstance(name, str) and name.split(".")[0] == "torchbolt"
