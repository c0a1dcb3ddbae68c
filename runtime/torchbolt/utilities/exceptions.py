"""Exceptions the runtime raises for user mistakes."""

from __future__ import annotations

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr


class MisconfigurationException(Exception):
    """A setting, hook or return value that cannot work; the message names the problem and the fix."""


class TrainerArgumentError(MisconfigurationException, ValueError, TypeError):
    """A Trainer argument with a wrong name, type or value.

    It is both a ValueError and a TypeError so that code written against Lightning (which raises either,
    depending on the argument) keeps catching it.
    """


class UnsupportedHardwareError(MisconfigurationException, ValueError):
    """A hardware choice this build cannot run (it runs on one CPU device)."""


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
