"""Writing checkpoints atomically and reading them without running code from the file.

`atomic_save` writes to a temporary file next to the target, flushes and fsyncs it, renames it over the
final name and fsyncs the folder, so a process killed at any moment leaves either the old complete file
or the new complete file under the final name, never a truncated one.

`safe_load` reads with `torch.load(weights_only=True)` plus an allow-list of the plain types checkpoints
legitimately hold (hyper-parameters of common types, `argparse.Namespace`, paths, numpy scalars, ...). A file that
references anything else (a function, a class, `os.system`, ...) is refused with `UnsafeCheckpointError`
unless the caller opts in with `trust=True` or the environment variable `TORCHBOLT_TRUST_CHECKPOINTS=1`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import pickle
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import torch

from torchbolt.checkpoint.errors import (
    TRUST_ENV_VAR,
    CheckpointNotFoundError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
)
from torchbolt.utilities.hparams import AttributeDict

_PATH = str | os.PathLike
#: Marks temporary files written by `atomic_save`: `.<final name>.<pid>.<random>.tmp`.
TMP_SUFFIX = ".tmp"


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself is still atomic
    finally:
        os.close(fd)


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc), else swapped briefly."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temp_path(target: Path) -> tuple[int, Path]:
    """A new temporary file beside `target`, with the permissions a plain `open()` would give it.

    mkstemp creates files as 0600 whatever the umask; checkpoints must follow the umask like any other
    file the user writes (0644 under the usual 022), so the mode is set from the umask here.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=target.parent)
    if hasattr(os, "fchmod"):  # POSIX; Windows has no such modes
        try:
            os.fchmod(fd, 0o666 & ~_current_umask())
        except OSError:
            pass  # a filesystem without modes (some network mounts): keep mkstemp's
    return fd, Path(name)


def atomic_save(obj: Any, path: _PATH) -> None:
    """Save `obj` with `torch.save` so that `path` only ever holds a complete file.

    Parent folders are created. The temporary file lives in the same folder (a rename across filesystems
    would not be atomic) and is removed if writing fails.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_path(target)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def atomic_symlink(source: _PATH, link: _PATH) -> None:
    """Point `link` at `source` atomically (a new link is created beside it and renamed over it)."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_path(link)
    os.close(fd)
    tmp.unlink()
    # a relative target keeps the link valid when the folder is moved
    try:
        target = os.path.relpath(Path(source).resolve(), link.parent.resolve())
    except ValueError:  # different drives on Windows
        target = str(Path(source).resolve())
    try:
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(link.parent)


def remove_stale_temp_files(folder: _PATH) -> list[Path]:
    """Delete temporary files that `atomic_save` left behind in `folder` when its process was killed.

    Only files whose writer process no longer runs are removed, so a concurrent writer is never disturbed.
    Returns the removed paths.
    """
    removed: list[Path] = []
    root = Path(folder)
    if not root.is_dir():
        return removed
    for candidate in root.glob(f".*{TMP_SUFFIX}"):
        parts = candidate.name.rsplit(".", 3)  # ['.<name>', '<pid>', '<random>', 'tmp']
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid() or _pid_alive(pid):
            continue  # its writer may still be renaming it into place
        with suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def _numpy_globals() -> list[Any]:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch wheels
        return []
    core = getattr(np, "_core", None) or np.core
    entries: list[Any] = [np.ndarray, np.dtype]
    multiarray = core.multiarray
    # numpy 2 pickles as numpy._core.*, numpy 1 as numpy.core.*; allow both spellings
    for attr in ("_reconstruct", "scalar"):
        fn = getattr(multiarray, attr)
        entries += [(fn, f"numpy._core.multiarray.{attr}"), (fn, f"numpy.core.multiarray.{attr}")]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        entries += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return entries


def allowed_globals() -> list[Any]:
    """Everything beyond torch's own weights-only set that a checkpoint may reference.

    These are plain data types: constructing them runs no user code. Lightning's AttributeDict (which
    Lightning may write into hparams) loads as a plain dict, so Lightning files load without Lightning.
    """
    entries: list[Any] = [
        argparse.Namespace,
        pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath,
        pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
        datetime.timedelta, datetime.datetime, datetime.date, datetime.time, datetime.timezone,
        frozenset, slice, range,
        AttributeDict,
        # Lightning pickles its AttributeDict item by item, which the weights-only loader can only do for a
        # plain dict: those load as dicts
        (dict, "lightning.fabric.utilities.data.AttributeDict"),
        (dict, "lightning_fabric.utilities.data.AttributeDict"),
        (dict, "pytorch_lightning.utilities.parsing.AttributeDict"),
        (dict, "lightning.pytorch.utilities.parsing.AttributeDict"),
        *_numpy_globals(),
    ]
    return entries


def trust_from_env() -> bool:
    """True when `TORCHBOLT_TRUST_CHECKPOINTS` is set to 1/true/yes."""
    return os.environ.get(TRUST_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def _allowed_names(entries: list[Any]) -> set[str]:
    names: set[str] = set()
    for entry in entries:
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f"{entry.__module__}.{entry.__qualname__}")
    return names


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    name = getattr(source, "name", None)
    return f"'{name}'" if isinstance(name, str) else "the given file object"


def _unsafe_globals(source: Any, allowed: set[str]) -> tuple[str, ...]:
    """The globals a torch.save file references that are neither torch-safe nor allow-listed."""
    try:
        if isinstance(source, (str, os.PathLike)):
            found = torch.serialization.get_unsafe_globals_in_checkpoint(source)
        else:
            position = source.tell()
            found = torch.serialization.get_unsafe_globals_in_checkpoint(source)
            source.seek(position)
    except Exception:
        return ()
    return tuple(g for g in found if g not in allowed)


def _unsafe_message(where: str, found: tuple[str, ...]) -> str:
    listed = ", ".join(found) if found else "an object outside the allow-list"
    return (
        f"Refusing to load checkpoint {where}: it references {listed}, and unpickling that could run "
        "arbitrary code. torchbolt only loads plain data (tensors, numbers, strings, containers, "
        "argparse.Namespace, paths, ...) by default. If you trust the file's origin, load it with "
        f"`trust=True` (or `weights_only=False` in load_from_checkpoint / Trainer.fit), or set the "
        f"environment variable {TRUST_ENV_VAR}=1."
    )


def safe_load(
    source: _PATH | IO[bytes],
    map_location: Any = None,
    trust: bool = False,
) -> Any:
    """Load a checkpoint written by torch.save (torchbolt's or Lightning's) without executing its code.

    `trust=True` (or `TORCHBOLT_TRUST_CHECKPOINTS=1`) unpickles everything: use it only for files you
    trust. Raises `CheckpointNotFoundError`, `CorruptCheckpointError` or `UnsafeCheckpointError`.
    """
    where = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise CheckpointNotFoundError(f"Checkpoint {where} does not exist. Check the path.")
        if path.is_dir():
            raise CorruptCheckpointError(
                f"Checkpoint {where} is a folder, not a file. Pass the path of a .ckpt file inside it."
            )
        if path.stat().st_size == 0:
            raise CorruptCheckpointError(
                f"Checkpoint {where} is empty (0 bytes): it was not written completely. Use another checkpoint."
            )
    trusted = trust or trust_from_env()
    entries = allowed_globals()
    if trusted:
        try:
            return torch.load(source, map_location=map_location, weights_only=False)
        except (EOFError, pickle.UnpicklingError, RuntimeError) as err:
            # other errors (a class that no longer imports, ...) are the user's code speaking: keep them
            raise CorruptCheckpointError(_corrupt_message(where, f"{type(err).__name__}: {err}")) from None
    try:
        with torch.serialization.safe_globals(entries):
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if hasattr(source, "seek"):
            with suppress(Exception):
                source.seek(0)  # type: ignore[union-attr]
        found = _unsafe_globals(source, _allowed_names(entries))
        # "Unsupported operand" and friends mean damaged bytes; a named global means a refused object
        if found or "global" in text.lower():
            raise UnsafeCheckpointError(_unsafe_message(where, found), found) from None
        raise CorruptCheckpointError(_corrupt_message(where, text)) from None
    except Exception as err:  # damaged bytes surface as many exception types from the unpickler
        if isinstance(err, FileNotFoundError):
            raise CheckpointNotFoundError(f"Checkpoint {where} does not exist. Check the path.") from None
        raise CorruptCheckpointError(_corrupt_message(where, f"{type(err).__name__}: {err}")) from None


def _corrupt_message(where: str, detail: str) -> str:
    # torch's weights-only errors open with advice to pass weights_only=False; the cause comes later
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(boilerplate)]
    first_line = (useful or lines or ["no detail"])[0].replace("WeightsUnpickler error:", "").strip() or "no detail"
    return (
        f"Checkpoint {where} is truncated or corrupt and cannot be read ({first_line[:200]}). "
        "It may have been copied partially or written by a process that was killed; use another checkpoint."
    )


def load_for_caller(
    source: _PATH | IO[bytes],
    map_location: Any = None,
    weights_only: bool | None = None,
) -> Any:
    """Lightning-style entry: `weights_only=False` means trusted (full pickle); None or True means safe."""
    return safe_load(source, map_location=map_location, trust=weights_only is False)


__all__: list[str] = [
    "TMP_SUFFIX",
    "allowed_globals",
    "atomic_save",
    "atomic_symlink",
    "load_for_caller",
    "remove_stale_temp_files",
    "safe_load",
    "trust_from_env",
]
