"""Source files of the packages installed in the run interpreter, found and parsed without importing them.

The user's Lightning (or any installed package whose classes they subclass) is the authority on which
arguments a Trainer accepts and what a `BoringModel` defines. The server never imports it: it asks the
run interpreter once for its `sys.path` (a subprocess that imports nothing but `sys` and `json`), then
maps module names to files on that path and parses them with `ast` on demand. Everything is cached per
interpreter; a file's facts per path and modification time.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .facts import FileFacts

log = logging.getLogger(__name__)

#: The interpreter prints its import path; `-S` is not used: site-packages is what we want.
_PATH_PROBE = "import json, sys; print(json.dumps([p for p in sys.path if p]))"
_TIMEOUT_S = 10.0
#: Packages whose classes are never Lightning classes: not worth parsing (torch/nn/modules/module.py alone
#: is 3,000 lines, and `class Net(nn.Module)` is in every file).
NEVER_LIGHTNING: frozenset[str] = frozenset({"torch", "numpy", "typing", "typing_extensions", "abc", "collections",
                                             "enum", "dataclasses", "functools", "builtins", "pydantic"})


class InstalledSources:
    """Module files of one interpreter's installed packages, with their facts (parsed on first use)."""

    def __init__(self, interpreter: str | None = None, search_path: list[str] | None = None) -> None:
        self.interpreter = interpreter or sys.executable
        self._search_path = search_path
        self._lock = threading.Lock()
        self._files: dict[str, str | None] = {}  # module -> file (None: not found)
        self._facts: dict[str, tuple[float, FileFacts]] = {}  # file -> (mtime, facts)

    @property
    def search_path(self) -> list[str]:
        """The interpreter's `sys.path` (asked once; empty when it cannot be run)."""
        if self._search_path is None:
            self._search_path = _ask_search_path(self.interpreter)
        return self._search_path

    def module_file(self, module: str) -> str | None:
        """`a/b/c.py` or `a/b/c/__init__.py` of a dotted module on the interpreter's path, or None."""
        with self._lock:
            if module in self._files:
                return self._files[module]
        parts = module.split(".")
        found = None
        for entry in self.search_path:
            if not os.path.isdir(entry):
                continue
            base = os.path.join(entry, *parts)
            for candidate in (base + ".py", os.path.join(base, "__init__.py")):
                if os.path.isfile(candidate):
                    found = candidate
                    break
            if found:
                break
        with self._lock:
            self._files[module] = found
        return found

    def facts(self, module: str) -> FileFacts | None:
        """The facts of an installed module's source (None when it is not installed or not Python source, or
        belongs to a package that defines no Lightning class)."""
        if module.partition(".")[0] in NEVER_LIGHTNING:
            return None
        path = self.module_file(module)
        if path is None:
            return None
        try:
            mtime = os.path.getmtime(path)
        except OSError:
            return None
        with self._lock:
            hit = self._facts.get(path)
        if hit is not None and hit[0] == mtime:
            return hit[1]
        import ast

        from .facts import extract_facts

        try:
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            tree = ast.parse(text, filename=path)
        except (OSError, SyntaxError, ValueError, RecursionError):
            return None
        is_package = os.path.basename(path) == "__init__.py"
        facts = extract_facts(tree, text, path, module, is_package)
        with self._lock:
            self._facts[path] = (mtime, facts)
        return facts


def _ask_search_path(interpreter: str) -> list[str]:
    if os.path.abspath(interpreter) == os.path.abspath(sys.executable):
        return [p for p in sys.path if p]  # the server's own interpreter: no process needed
    try:
        out = subprocess.run([interpreter, "-c", _PATH_PROBE], capture_output=True, text=True,
                             timeout=_TIMEOUT_S, check=True).stdout
        paths = json.loads(out)
        return [str(p) for p in paths if isinstance(p, str)]
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.info("cannot read the import path of %s (%s): installed packages are not consulted", interpreter, exc)
        return []


_BY_INTERPRETER: dict[str, InstalledSources] = {}
_BY_LOCK = threading.Lock()


def installed_sources(interpreter: str | None = None) -> InstalledSources:
    """The shared `InstalledSources` of an interpreter (the server's own when None)."""
    key = os.path.abspath(interpreter or sys.executable)
    with _BY_LOCK:
        hit = _BY_INTERPRETER.get(key)
        if hit is None:
            hit = _BY_INTERPRETER[key] = InstalledSources(key)
        return hit




def run_interpreter(folder: str | None) -> str:
    """The run interpreter of a workspace folder: `[tool.torchbolt.run] interpreter`, else the server's."""
    if folder:
        from ..runs.settings import SettingsError, load_pyproject

        try:
            return load_pyproject(folder).resolved_interpreter(folder)
        except (SettingsError, OSError, ValueError):
            pass
    return sys.executable


__all__ = ["NEVER_LIGHTNING", "InstalledSources", "installed_sources", "run_interpreter"]
