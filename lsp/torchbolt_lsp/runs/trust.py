"""Folders the user trusted to run, remembered per user outside every workspace.

Editors with their own trust UI (VS Code) say `trusted` in initializationOptions and this store is not
consulted. Other clients (Neovim, Helix, Emacs) get a prompt on the first run command in a folder; the
answer "Trust this folder" is written here so the next session does not ask again.

The file is `$TORCHBOLT_TRUST_FILE` when set, else `$XDG_STATE_HOME/torchbolt/trusted.json`
(`~/.local/state/torchbolt/trusted.json` by default): `{"version": 1, "folders": ["/abs/path", ...]}`.
A folder is trusted when it or one of its parents is listed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Environment variable naming the trust file (tests and custom setups).
TRUST_FILE_ENV = "TORCHBOLT_TRUST_FILE"
VERSION = 1


def trust_file() -> Path:
    """Where the per-user trust list lives (see the module docstring)."""
    explicit = os.environ.get(TRUST_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "torchbolt" / "trusted.json"


def _canonical(folder: str | os.PathLike[str]) -> str:
    return os.path.normcase(os.path.realpath(folder))


class TrustStore:
    """Reads and extends the per-user list of trusted folders."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else trust_file()

    def folders(self) -> list[str]:
        """The trusted folders; an absent or unreadable file trusts nothing (logged, never raised)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring the trust file %s: %s", self.path, exc)
            return []
        folders = data.get("folders") if isinstance(data, dict) else None
        return [f for f in folders if isinstance(f, str)] if isinstance(folders, list) else []

    def is_trusted(self, folder: str | os.PathLike[str]) -> bool:
        """True when `folder` or one of its parents was trusted."""
        path = _canonical(folder)
        for trusted in self.folders():
            root = _canonical(trusted)
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return True
        return False

    def add(self, folder: str | os.PathLike[str]) -> None:
        """Remember `folder` as trusted (atomic write, readable by the user only)."""
        folders = self.folders()
        path = _canonical(folder)
        if path in (_canonical(f) for f in folders):
            return
        folders.append(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"version": VERSION, "folders": folders}, f, indent=1)
        os.replace(tmp, self.path)
