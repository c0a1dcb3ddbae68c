"""The banner CLI scripts print at start (`cli_lightning_logo`)."""

from __future__ import annotations

__all__ = ["LIGHTNING_LOGO", "cli_lightning_logo"]

LIGHTNING_LOGO = r"""
          ________
         /       /
        /       /__
       /__        /
          /     /
         /   /
        /  /        torchbolt
       / /          Lightning's API, fast
      //
"""


def cli_lightning_logo() -> None:
    """Print the banner (in magenta on terminals that show colour)."""
    print()
    print("\033[0;35m" + LIGHTNING_LOGO + "\033[0m")
    print()
