"""`python -m torchbolt ...`: the same command line as the `torchbolt` script."""

from __future__ import annotations

import sys

from torchbolt.cli.command import main

if __name__ == "__main__":
    sys.exit(main())
