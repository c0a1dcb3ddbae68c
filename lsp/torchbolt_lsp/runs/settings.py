"""Run settings: `[tool.torchbolt.run]` in the workspace's pyproject.toml, then the editor's
`settings.run`, then the command's `overrides` (later wins, Trainer arguments merge key by key).

```toml
[tool.torchbolt.run]
interpreter = ".venv/bin/python"    # relative paths are relative to the workspace folder
data = "data.py::DigitsData"        # the LightningDataModule target passed as --data
env = { CUBLAS_WORKSPACE_CONFIG = ":4096:8" }
prewarm = true                      # after your first run: keep a worker with torch imported ready
engine = "torchbolt"                # or "lightning": run on the real Lightning (when installed) to compare
keep_runs = 20                      # .torchbolt/runs keeps the last 20 runs,
keep_best_runs = 3                  # plus the 3 best of each target (on its monitored metric),
max_runs_mb = 500                   # and never more than 500 MB (oldest go first)

[tool.torchbolt.run.trainer]
max_epochs = 3
limit_train_batches = 50

[tool.torchbolt.run.lr_find]         # what the Find LR lens passes to Tuner.lr_find
num_training = 50
min_lr = 1e-6
```

Trainer argument names are checked against the catalog before anything is launched; values are checked by
the runtime's command line (objects such as callbacks take its `{class_path, init_args}` form).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torchbolt.catalog import TRAINER_ARGS_BY_NAME, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["RunSettings", "SettingsError", "load_pyproject", "merge_settings"]

_KEYS = ("interpreter", "data", "env", "trainer", "lr_find", "prewarm", "engine", "keep_runs", "keep_best_runs",
         "max_runs_mb")
#: Tuner.lr_find arguments a Find LR run takes (`[tool.torchbolt.run.lr_find]`, a command's `lrFind`).
LR_FIND_ARGS = ("min_lr", "max_lr", "num_training", "mode", "early_stop_threshold")
#: Engines a run can use, and the variable that tells the runtime which (see torchbolt.compat.engine).
_ENGINES = ("torchbolt", "lightning")
_ENGINE_ENV = "TORCHBOLT_ENGINE"
#: History limits when pyproject.toml sets none.
DEFAULT_KEEP_RUNS, DEFAULT_KEEP_BEST_RUNS, DEFAULT_MAX_RUNS_MB = 20, 3, 500.0


class SettingsError(ValueError):
    """Run settings that cannot be used; the message names the setting and how to fix it."""


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides its target: interpreter, DataModule target, env and Trainer kwargs."""

    interpreter: str | None = None
    data: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)
    lr_find: dict[str, Any] = field(default_factory=dict)  # Tuner.lr_find arguments of Find LR runs
    prewarm: bool = True  # keep a worker with torch imported ready for the next run (trusted workspaces)
    keep_runs: int | None = None  # None: DEFAULT_KEEP_RUNS (None means "not set" so layers merge)
    keep_best_runs: int | None = None
    max_runs_mb: float | None = None
    source: str = "defaults"  # where the settings came from, for messages

    def history_limits(self) -> tuple[int, int, int]:
        """(last runs kept, best runs kept per target, byte cap) for pruning `.torchbolt/runs`."""
        keep = DEFAULT_KEEP_RUNS if self.keep_runs is None else self.keep_runs
        best = DEFAULT_KEEP_BEST_RUNS if self.keep_best_runs is None else self.keep_best_runs
        mb = DEFAULT_MAX_RUNS_MB if self.max_runs_mb is None else self.max_runs_mb
        return keep, best, int(mb * 1024 * 1024)

    def resolved_interpreter(self, folder: str) -> str:
        """The interpreter to launch: the setting (relative to the workspace folder) or the server's own."""
        if not self.interpreter:
            return sys.executable
        path = os.path.expanduser(self.interpreter)
        if os.sep in path or (os.altsep and os.altsep in path):
            path = os.path.join(folder, path) if not os.path.isabs(path) else path
        return path


def _check_trainer(trainer: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in trainer.items():
        if name not in TRAINER_ARGS_BY_NAME:
            guess = did_you_mean(name, TRAINER_ARGS_BY_NAME)
            hint = f"; did you mean {guess!r}?" if guess else "; see the Trainer arguments in the documentation"
            raise SettingsError(f"{where}: {name!r} is not a Trainer argument{hint}")
        out[name] = value
    return out


def _parse_table(table: Mapping[str, Any], where: str) -> RunSettings:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}")
    interpreter = table.get("interpreter")
    if interpreter is not None and not (isinstance(interpreter, str) and interpreter):
        raise SettingsError(f"{where}.interpreter must be a non-empty string (a path to python)")
    data = table.get("data")
    if data is not None and not (isinstance(data, str) and data):
        raise SettingsError(f"{where}.data must be a 'file.py::ClassName' or 'module:ClassName' string")
    env = table.get("env", {})
    if not isinstance(env, Mapping) or not all(isinstance(k, str) for k in env):
        raise SettingsError(f"{where}.env must be a table of NAME = \"value\"")
    trainer = table.get("trainer", {})
    if not isinstance(trainer, Mapping):
        raise SettingsError(f"{where}.trainer must be a table of Trainer arguments")
    lr_find = table.get("lr_find", {})
    if not isinstance(lr_find, Mapping):
        raise SettingsError(f"{where}.lr_find must be a table of Tuner.lr_find arguments, e.g. num_training = 50")
    for name in lr_find:
        if name not in LR_FIND_ARGS:
            guess = did_you_mean(name, LR_FIND_ARGS)
            hint = f"did you mean {guess!r}?" if guess else f"allowed: {', '.join(LR_FIND_ARGS)}"
            raise SettingsError(f"{where}.lr_find: {name!r} is not a Tuner.lr_find argument; {hint}")
    prewarm = table.get("prewarm", True)
    if not isinstance(prewarm, bool):
        raise SettingsError(f"{where}.prewarm must be true or false")
    engine = table.get("engine")
    if engine is not None and engine not in _ENGINES:
        raise SettingsError(f"{where}.engine must be one of {', '.join(map(repr, _ENGINES))}, not {engine!r}")
    env = {**env, _ENGINE_ENV: engine} if engine else env  # the runtime reads the engine from its environment
    limits: dict[str, Any] = {}
    for name in ("keep_runs", "keep_best_runs", "max_runs_mb"):
        value = table.get(name)
        if value is None:
            continue
        whole = name != "max_runs_mb"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value < 0:
            kind = "a whole number" if whole else "a number of megabytes"
            raise SettingsError(f"{where}.{name} must be {kind} >= 0 (got {value!r})")
        limits[name] = value
    return RunSettings(interpreter=interpreter, data=data, env={k: str(v) for k, v in env.items()},
                       trainer=_check_trainer(trainer, f"{where}.trainer"), lr_find=dict(lr_find), prewarm=prewarm,
                       source=where,
                       **limits)


def load_pyproject(folder: str | os.PathLike[str]) -> RunSettings:
    """`[tool.torchbolt.run]` of `<folder>/pyproject.toml` (defaults when the file or table is absent)."""
    path = Path(folder) / "pyproject.toml"
    if not path.is_file():
        return RunSettings()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it as TOML ({exc}); fix the file or remove the "
                            "[tool.torchbolt.run] table") from None
    table = doc.get("tool", {}).get("torchbolt", {}).get("run")
    if table is None:
        return RunSettings()
    if not isinstance(table, Mapping):
        raise SettingsError(f"{path}: [tool.torchbolt.run] must be a table")
    return _parse_table(table, f"{path.name} [tool.torchbolt.run]")


def merge_settings(base: RunSettings, layer: Mapping[str, Any] | None, where: str) -> RunSettings:
    """`base` with the keys of `layer` applied (trainer, lr_find and env merge by key; None values are ignored)."""
    if not layer:
        return base
    extra = _parse_table({k: v for k, v in layer.items() if v is not None}, where)
    return replace(
        base,
        interpreter=extra.interpreter or base.interpreter,
        data=extra.data or base.data,
        env={**base.env, **extra.env},
        trainer={**base.trainer, **extra.trainer},
        lr_find={**base.lr_find, **extra.lr_find},
        prewarm=base.prewarm and extra.prewarm,
        keep_runs=base.keep_runs if extra.keep_runs is None else extra.keep_runs,
        keep_best_runs=base.keep_best_runs if extra.keep_best_runs is None else extra.keep_best_runs,
        max_runs_mb=base.max_runs_mb if extra.max_runs_mb is None else extra.max_runs_mb,
        source=f"{base.source} + {where}" if base.source != "defaults" else where,
    )


def trainer_arg_line(folder: str | os.PathLike[str], name: str) -> int | None:
    """0-based line of `name = ...` inside `[tool.torchbolt.run.trainer]` of the pyproject (for diagnostics)."""
    path = Path(folder) / "pyproject.toml"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    in_table = False
    for i, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith("["):
            in_table = line.replace(" ", "") == "[tool.torchbolt.run.trainer]"
            continue
        if in_table and line.split("=", 1)[0].strip() == name:
            return i
    return None
