"""`python -m torchbolt_lsp.lint` is `torchbolt check`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
