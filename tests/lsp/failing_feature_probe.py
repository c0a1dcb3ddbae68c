"""A feature module for tests only (loaded via TORCHBOLT_LSP_EXTRA_FEATURES): handlers that fail on purpose."""

from __future__ import annotations

from typing import Any


def register(server: Any) -> None:
    @server.feature("torchbolt/testExplode")
    def explode(ls: Any, params: Any) -> None:
        raise RuntimeError("boom on purpose")

    def failing_listener(ls: Any, event: Any) -> None:
        raise ValueError("listener fails on purpose")

    def failing_contributor(ls: Any, target: Any) -> str:
        raise KeyError("contributor fails on purpose")

    server.document_listeners.append(failing_listener)
    server.hover_contributors.append(failing_contributor)
    server.hover_contributors.append(lambda ls, target: f"probe saw {target.kind} {target.name}")
