"""Running unmodified Lightning code on torchbolt.

- `hook`: the import hook that makes `lightning.pytorch` / `lightning` / `pytorch_lightning` resolve to
  torchbolt inside torchbolt's processes (`install()`, `uninstall()`, `active()`).
- `engine`: the engine a run uses (`torchbolt`, or the real `lightning` for comparison).
- `script`: `torchbolt run SCRIPT [ARGS...]`.
- `unsupported`: the error raised for Lightning names torchbolt does not provide.

Importing this package is torch-free and cheap.
"""

from __future__ import annotations

from torchbolt.compat.engine import ENGINES, EngineError, activate, current_engine, framework
from torchbolt.compat.hook import active, install, uninstall
from torchbolt.compat.unsupported import NotProvidedError

__all__ = ["ENGINES", "EngineError", "NotProvidedError", "activate", "active", "current_engine", "framework",
           "install", "uninstall"]
