"""torchbolt_lsp: a language server that understands Lightning code (never imports torch)."""

from __future__ import annotations

__version__ = "0.1.0"
