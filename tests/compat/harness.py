"""Runs Lightning programs unmodified, one engine per process, and records what a comparison needs.

Used as `python -m torchbolt run [--engine lightning] harness.py OUT.json PROGRAM.py[::ARG ARG ...] ...`:
each program runs as `__main__` (its own working folder and sys.argv) after the Trainer class of every
Lightning import name is wrapped so that each Trainer gets one more callback, a recorder, which notes
every training step's loss and `callback_metrics`, and the metrics at the end of each validation/test
epoch. After each program, the checkpoints (their keys) and CSV logs in its folder are read too.
Tests compare the two engines' records (tests/compat/test_programs.py).
"""

from __future__ import annotations

import csv
import functools
import glob
import json
import math
import os
import runpy
import sys
import traceback
from typing import Any

RECORD: list[dict[str, Any]] = []


def _scalar(value: Any) -> float | None:
    try:
        if hasattr(value, "numel"):
            if value.numel() != 1:
                return None
            value = value.item()
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _metrics(mapping: Any) -> dict[str, float]:
    out = {}
    for key, value in dict(mapping).items():
        number = _scalar(value)
        if number is not None:
            out[str(key)] = number
    return out


def _loss_of(outputs: Any) -> float | None:
    if isinstance(outputs, dict):
        outputs = outputs.get("loss")
    return _scalar(outputs) if outputs is not None else None


def make_recorder(base: type) -> type:
    """A Callback subclass of `base` (the engine's Callback class) appending to RECORD."""

    class Recorder(base):  # type: ignore[misc, valid-type]
        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            RECORD.append({"kind": "train_step", "epoch": trainer.current_epoch, "global_step": trainer.global_step,
                           "batch_idx": batch_idx, "loss": _loss_of(outputs),
                           "metrics": _metrics(trainer.callback_metrics)})

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if not trainer.sanity_checking:
                RECORD.append({"kind": "validation_epoch", "epoch": trainer.current_epoch,
                               "metrics": _metrics(trainer.callback_metrics)})

        def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            RECORD.append({"kind": "test_epoch", "metrics": _metrics(trainer.callback_metrics)})

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            RECORD.append({"kind": "fit_end", "epoch": trainer.current_epoch, "global_step": trainer.global_step})

    return Recorder


def _wrap_trainers() -> None:
    """Give every Trainer a recorder; each distinct Trainer class (lightning.pytorch / pytorch_lightning) once."""
    import importlib

    seen: set[int] = set()
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            package = importlib.import_module(name)
        except ImportError:
            continue
        trainer_cls = package.Trainer
        if id(trainer_cls) in seen:
            continue
        seen.add(id(trainer_cls))
        recorder = make_recorder(package.Callback)
        original = trainer_cls.__init__

        @functools.wraps(original)  # LightningCLI reads the Trainer's signature through this wrapper
        def __init__(self: Any, *args: Any, _original: Any = original, _recorder: type = recorder,
                     **kwargs: Any) -> None:
            callbacks = kwargs.get("callbacks")
            callbacks = [] if callbacks is None else list(callbacks) if isinstance(callbacks, (list, tuple)) \
                else [callbacks]
            kwargs["callbacks"] = [*callbacks, _recorder()]
            _original(self, *args, **kwargs)

        trainer_cls.__init__ = __init__


def _checkpoints(folder: str) -> dict[str, Any]:
    import torch

    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.ckpt"), recursive=True)):
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        out[os.path.relpath(path, folder)] = {
            "keys": sorted(ckpt),
            "state_dict": sorted(ckpt.get("state_dict", {})),
            "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
            "optimizers": len(ckpt.get("optimizer_states", [])),
            "schedulers": len(ckpt.get("lr_schedulers", [])),
            "hyper_parameters": sorted(ckpt.get("hyper_parameters", {})),
            "callbacks": sorted(str(k) for k in ckpt.get("callbacks", {})),
        }
    return out


def _csv_logs(folder: str) -> dict[str, Any]:
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "**", "metrics.csv"), recursive=True)):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        out[os.path.relpath(path, folder)] = [{k: _scalar(v) if v not in ("", None) else None
                                               for k, v in row.items()} for row in rows]
    return out


def _json_files(folder: str) -> dict[str, Any]:
    """JSON files a program wrote itself (its own results)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            out[os.path.basename(path)] = json.load(f)
    return out


def run_program(spec: str, root: str) -> dict[str, Any]:
    """Run one `PROGRAM.py[::ARGS]` as __main__ in its own folder under `root`; returns its record."""
    path, _, args = spec.partition("::")
    path = os.path.abspath(path)
    name = os.path.splitext(os.path.basename(path))[0]
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    cwd, argv, sys_path = os.getcwd(), sys.argv, list(sys.path)
    RECORD.clear()
    status = "ok"
    os.chdir(folder)
    sys.argv = [path, *args.split()]
    sys.path.insert(0, os.path.dirname(path))
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as err:
        if err.code not in (None, 0):
            status = f"SystemExit: {err.code}"
    except BaseException as err:  # a failing program is a result to report, not a harness crash
        status = f"{type(err).__name__}: {err}".splitlines()[0]
        traceback.print_exc()
    finally:
        os.chdir(cwd)
        sys.argv, sys.path[:] = argv, sys_path
    return {"status": status, "record": list(RECORD), "checkpoints": _checkpoints(folder),
            "csv": _csv_logs(folder), "json": _json_files(folder)}


def main(argv: list[str]) -> int:
    out_path, specs = argv[0], argv[1:]
    root = os.path.join(os.path.dirname(os.path.abspath(out_path)), "work")
    _wrap_trainers()
    results = {}
    for spec in specs:
        name = os.path.splitext(os.path.basename(spec.partition("::")[0]))[0]
        results[name] = run_program(spec, root)
    with open(out_path, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
