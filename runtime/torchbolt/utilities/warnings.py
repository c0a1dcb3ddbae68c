"""Warning categories and the switch that silences torchbolt's "possible mistake" warnings."""

from __future__ import annotations

import warnings

from torchbolt.utilities.rank_zero import LightningDeprecationWarning

__all__ = ["LightningDeprecationWarning", "PossibleUserWarning", "disable_possible_user_warnings"]


class PossibleUserWarning(UserWarning):
    """A warning about something that is often, but not always, a mistake (e.g. few dataloader workers)."""


def disable_possible_user_warnings(module: str = "") -> None:
    """Ignore every PossibleUserWarning (raised from modules matching the regex `module`, default all)."""
    warnings.filterwarnings("ignore", module=module, category=PossibleUserWarning)
