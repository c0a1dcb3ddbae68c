"""Features find their collaborators in declared slots of the server, whatever order they register in."""

from __future__ import annotations

import pytest
from torchbolt_lsp.server import create_server

RUNS_FIRST = ("torchbolt_lsp.features.runs", "torchbolt_lsp.features.code_actions",
              "torchbolt_lsp.features.diagnostics")


@pytest.mark.parametrize("order", [RUNS_FIRST, tuple(reversed(RUNS_FIRST))], ids=["runs-first", "runs-last"])
def test_run_diagnostics_and_actions_reach_the_lint_features_in_any_order(order: tuple[str, ...]):
    server = create_server(order)
    assert server.failed_features == {}
    assert len(server.diagnostic_providers) == 1 and len(server.code_action_providers) == 1
    assert server.lint_state is not None and server.lint_state.extra is server.diagnostic_providers
    assert server.run_manager is server.run_manager  # one manager per server, created on first use
    assert server.provider_diagnostics_changed(set()) is True  # the diagnostics feature publishes them


def test_without_the_diagnostics_feature_nobody_claims_run_diagnostics():
    server = create_server(("torchbolt_lsp.features.runs",))
    assert server.lint_state is None
    assert server.provider_diagnostics_changed(set()) is False  # the run manager then pushes its own
    assert create_server(("torchbolt_lsp.features.runs",)).run_manager is not server.run_manager
