"""The rule families; importing this package registers every checker with the engine."""

from __future__ import annotations

from . import arguments, devices, hooks, logging, optimization

__all__ = ["arguments", "devices", "hooks", "logging", "optimization"]
