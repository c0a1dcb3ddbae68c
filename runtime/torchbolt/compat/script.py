"""`torchbolt run [--engine E] SCRIPT [ARGS...]`: run a script's own `__main__` on torchbolt.

The script runs as `python SCRIPT ARGS...` would run it (its folder first on sys.path, `sys.argv` set,
`__name__ == "__main__"`), after the engine is activated, so its `import lightning.pytorch as pl` gets
torchbolt, or the real Lightning with `--engine lightning`.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback
from collections.abc import Sequence

from torchbolt.compat.engine import EngineError, activate, deactivate, split_engine_option

__all__ = ["RUN_USAGE", "main", "run_script"]

RUN_USAGE = """usage: torchbolt run [--engine {torchbolt,lightning}] SCRIPT [ARGS ...]

Run SCRIPT's __main__ (as `python SCRIPT ARGS...` would) with Lightning's imports resolving to torchbolt.
Options before SCRIPT belong to torchbolt; everything after it is the script's own sys.argv.

options:
  --engine torchbolt   run on torchbolt (default; also $TORCHBOLT_ENGINE)
  --engine lightning   run on the real Lightning, when installed (to compare results)
"""


def run_script(path: str, args: Sequence[str], engine: str | None = None) -> None:
    """Activate `engine` and run the script at `path` as `__main__` with `args` as its arguments."""
    full = os.path.abspath(path)
    if not os.path.isfile(full):
        raise FileNotFoundError(f"no such script: {path} (resolved to {full})")
    activate(engine)
    _run_main(full, path, args)


def _run_main(full: str, path: str, args: Sequence[str]) -> None:
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(full))
    runpy.run_path(full, run_name="__main__")


def main(argv: Sequence[str]) -> int:
    """The `run` command: returns the exit status (2 for a usage error; the script's SystemExit code)."""
    args = list(argv)
    split = next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
    # --engine VALUE: VALUE is not the script
    while split < len(args) and split > 0 and args[split - 1] == "--engine":
        split = next((i for i in range(split + 1, len(args)) if not args[i].startswith("-")), len(args))
    own, script_and_args = args[:split], args[split:]
    if any(a in ("-h", "--help") for a in own) or not script_and_args:
        print(RUN_USAGE, end="", file=sys.stdout if own else sys.stderr)
        return 0 if own else 2
    try:
        engine, unknown = split_engine_option(own)
        if unknown:
            raise EngineError(f"unknown option(s) {' '.join(unknown)} before the script; "
                              "put the script's own options after SCRIPT")
        path = script_and_args[0]
        full = os.path.abspath(path)
        if not os.path.isfile(full):
            raise FileNotFoundError(f"no such script: {path} (resolved to {full})")
        activate(engine)
    except (EngineError, FileNotFoundError, RuntimeError) as err:
        print(f"torchbolt run: error: {err}", file=sys.stderr)
        return 2
    try:
        _run_main(full, path, script_and_args[1:])
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("torchbolt run: interrupted", file=sys.stderr)
        return 130
    except BaseException:
        traceback.print_exc()  # as `python SCRIPT` would
        return 1
    finally:
        deactivate()
    return 0
