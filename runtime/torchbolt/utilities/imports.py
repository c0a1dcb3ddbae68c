"""Availability flags of optional packages and version checks, as Lightning code tests them."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import operator
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import torch

from torchbolt.utilities.rank_zero import rank_zero_warn

__all__ = ["RequirementCache", "compare_version", "module_available", "package_available", "rank_zero_warn"]


@lru_cache
def package_available(name: str) -> bool:
    """Whether the top-level package `name` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def module_available(path: str) -> bool:
    """Whether the dotted module `path` can be imported (its parents are imported to check)."""
    parts = path.split(".")
    if not package_available(parts[0]):
        return False
    try:
        importlib.import_module(path)
    except ImportError:
        return False
    return True


def _release(text: str) -> tuple[int, ...]:
    """The numeric release part of a version string: '2.13.0+cpu' -> (2, 13, 0), '1.0.0rc1' -> (1, 0, 0)."""
    out = []
    for part in text.split("+")[0].split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def _version_at_least(package: str, version: str) -> bool:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return _release(installed(package)) >= _release(version)
    except PackageNotFoundError:
        return False


_TORCH_VERSION = _release(torch.__version__)
_PYTHON_GREATER_EQUAL_3_11_0 = sys.version_info >= (3, 11)
_TORCH_GREATER_EQUAL_2_6 = _TORCH_VERSION >= (2, 6)
_TORCH_GREATER_EQUAL_2_8 = _TORCH_VERSION >= (2, 8)
_TORCH_EQUAL_2_8 = (2, 8) <= _TORCH_VERSION < (2, 9)
_TORCH_EQUAL_2_9 = (2, 9) <= _TORCH_VERSION < (2, 10)
_TORCHMETRICS_GREATER_EQUAL_0_8_0 = _version_at_least("torchmetrics", "0.8.0")
_TORCHMETRICS_GREATER_EQUAL_0_9_1 = _version_at_least("torchmetrics", "0.9.1")
_TORCHMETRICS_GREATER_EQUAL_0_11 = _version_at_least("torchmetrics", "0.11.0")
_TORCHMETRICS_GREATER_EQUAL_1_0_0 = _version_at_least("torchmetrics", "1.0.0")
_OMEGACONF_AVAILABLE = package_available("omegaconf")
_TORCHVISION_AVAILABLE = package_available("torchvision")
_RICH_AVAILABLE = package_available("rich") and _version_at_least("rich", "10.2.2")
_JSONARGPARSE_AVAILABLE = package_available("jsonargparse")
_TENSORBOARD_AVAILABLE = package_available("tensorboard")
_TENSORBOARDX_AVAILABLE = package_available("tensorboardX")


_OPERATORS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt,
              "<": operator.lt}


def compare_version(package: str, op: Callable[[Any, Any], bool], version: str, use_base_version: bool = False) -> bool:
    """`op(installed version of package, version)`; False when the package is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        current = installed(package)
    except PackageNotFoundError:
        return False
    return bool(op(_release(current), _release(version)))


class RequirementCache:
    """Truthy when a requirement such as "torchmetrics>=0.8.0" is met; `str()` says why not otherwise.

    Only release numbers are compared (pre-release and local parts are ignored).
    """

    def __init__(self, requirement: str, module: str | None = None) -> None:
        self.requirement = requirement
        self.module = module
        self._met: bool | None = None
        self._why = ""

    def _check(self) -> bool:
        import re
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as installed

        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*(.*)$", self.requirement)
        if match is None:
            raise ValueError(f"RequirementCache: cannot parse requirement {self.requirement!r}")
        name, _, specifiers = match.groups()
        try:
            current = installed(name)
        except PackageNotFoundError:
            self._why = f"Requirement {self.requirement!r} not met: {name} is not installed"
            return False
        for spec in filter(None, (s.strip() for s in specifiers.split(","))):
            op = next((o for o in sorted(_OPERATORS, key=len, reverse=True) if spec.startswith(o)), None)
            if op is None:
                raise ValueError(f"RequirementCache: unsupported specifier {spec!r} in {self.requirement!r}")
            if not _OPERATORS[op](_release(current), _release(spec[len(op):].strip())):
                self._why = f"Requirement {self.requirement!r} not met: found {name}=={current}"
                return False
        if self.module is not None and not module_available(self.module):
            self._why = f"Requirement {self.requirement!r} met, but {self.module} cannot be imported"
            return False
        return True

    def __bool__(self) -> bool:
        if self._met is None:
            self._met = self._check()
        return self._met

    def __str__(self) -> str:
        return "" if bool(self) else self._why

    def __repr__(self) -> str:
        return f"RequirementCache({self.requirement!r}) -> {bool(self)}"
