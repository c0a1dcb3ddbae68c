"""Writing checkpoints atomically and reading them without running code from the file.

`atomic_save` writes to a temporary file next to the target, flushes and fsyncs it, renames it over the
final name and fsyncs the folder, so a process killed at any moment leaves either the old complete file
or the new complete file under the final name, never a truncated one.

`safe_load` reads with `torch.load(weights_only=True)` plus an allow-list of the plain types checkpoints
legitimately hold (hyper-parameters of common types, `argparse.Namespace`, paths, numpy scalars, ...). A file that
references anything else (a function, a class, `os.system`, ...) is refused with `UnsafeCheckpointError`
unless the caller opts in with `trust=True` or the environment variable `TORCHBOLT_TRUST_CHECKPOINTS=1`,
or the file is one this process wrote with `atomic_save` and its bytes are unchanged (content hash), e.g.
`trainer.test(ckpt_path="best")` right after `fit`. A refusal names the hyper-parameters that hold the
offending objects and how to leave them out of the checkpoint.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
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


#: Files this process wrote with `atomic_save`: real path -> (size, sha256 of the bytes written).
_WRITTEN_HERE: dict[str, tuple[int, str]] = {}
_HASH_CHUNK = 1 << 20


def _sha256(path: _PATH) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def written_by_this_process(path: _PATH) -> bool:
    """True when `path` is a file this process saved with `atomic_save` and its bytes are unchanged
    since (same size and content hash), so loading it cannot run anyone else's code."""
    key = os.path.realpath(path)
    known = _WRITTEN_HERE.get(key)
    if known is None:
        return False
    try:
        if os.path.getsize(key) != known[0]:
            return False
        return _sha256(key) == known[1]
    except OSError:
        return False


def atomic_save(obj: Any, path: _PATH) -> None:
    """Save `obj` with `torch.save` so that `path` only ever holds a complete file.

    Parent folders are created. The temporary file lives in the same folder (a rename across filesystems
    would not be atomic) and is removed if writing fails. The file's content hash is remembered, so this
    process can load it back even when it holds objects outside the safe-load allow-list.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_path(target)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        fingerprint = (os.path.getsize(tmp), _sha256(tmp))  # read back from the page cache: cheap
        os.replace(tmp, target)
        _WRITTEN_HERE[os.path.realpath(target)] = fingerprint
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


def _unsafe_message(where: str, found: tuple[str, ...], culprits: dict[str, list[str]] | None = None) -> str:
    listed = ", ".join(found) if found else "an object outside the allow-list"
    hint = ""
    if culprits:
        named = "; ".join(f"{section} {', '.join(repr(n) for n in names)}" for section, names in culprits.items())
        ignore = sorted({n for names in culprits.values() for n in names})
        hint = (f" The objects are stored as {named}: leave them out of checkpoints with "
                f"`self.save_hyperparameters(ignore={ignore!r})` (and pass them to __init__ again when loading).")
    return (
        f"Refusing to load checkpoint {where}: it references {listed}, and unpickling that could run "
        f"arbitrary code.{hint} torchbolt only loads plain data (tensors, numbers, strings, containers, "
        "argparse.Namespace, paths, ...) by default, and files this process wrote itself. If you trust the "
        "file's origin, load it with `trust=True` (or `weights_only=False` in load_from_checkpoint / "
        f"Trainer.fit), or set the environment variable {TRUST_ENV_VAR}=1."
    )


class _Placeholder:
    """Stands in for a refused global while diagnosing a refusal: accepts any construction and state,
    runs nothing. A class per refused name (the unpickler's NEWOBJ needs a type)."""

    refused_name = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __new__(cls, *args: Any, **kwargs: Any) -> _Placeholder:
        return object.__new__(cls)

    def __setstate__(self, state: Any) -> None:
        pass


def _placeholder_pickle_module(refused: set[str]) -> Any:
    """A pickle module whose Unpickler turns every `refused` global into a _Placeholder (no code runs
    for them; everything else is what torch's weights-only loader allows anyway)."""
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            # protocol-2 pickles spell Python 3's builtins module the Python 2 way
            full = f"{'builtins' if module == '__builtin__' else module}.{name}"
            if full in refused:
                return type(name, (_Placeholder,), {"refused_name": full})
            return super().find_class(module, name)

    module = types.ModuleType("torchbolt_placeholder_pickle")
    module.__dict__.update({k: getattr(pickle, k) for k in ("load", "loads", "dump", "dumps", "Pickler")})
    module.Unpickler = Unpickler  # type: ignore[attr-defined]
    return module


def _contains_placeholder(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _Placeholder):
        return True
    if depth > 20:
        return False
    if isinstance(value, dict):
        return any(_contains_placeholder(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_contains_placeholder(v, depth + 1) for v in value)
    return False


def refused_hyperparameters(source: _PATH, found: tuple[str, ...]) -> dict[str, list[str]]:
    """Which saved hyper-parameters hold the refused objects: {'hyper_parameters': ['act', ...], ...}.

    Loads the file with the refused globals replaced by inert placeholders (nothing from the file runs);
    empty when the file cannot be read that way or the objects are elsewhere.
    """
    if not found or not isinstance(source, (str, os.PathLike)):
        return {}
    try:
        checkpoint = torch.load(source, map_location="cpu", weights_only=False,
                                pickle_module=_placeholder_pickle_module(set(found)))
    except Exception:
        return {}
    culprits: dict[str, list[str]] = {}
    if not isinstance(checkpoint, dict):
        return culprits
    for section in ("hyper_parameters", "datamodule_hyper_parameters"):
        params = checkpoint.get(section)
        if isinstance(params, dict):
            names = [str(k) for k, v in params.items() if _contains_placeholder(v)]
            if names:
                culprits[section] = names
    return culprits


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
    trusted = trust or trust_from_env() or (
        isinstance(source, (str, os.PathLike)) and written_by_this_process(source))
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
            culprits = refused_hyperparameters(source, found)  # type: ignore[arg-type]
            raise UnsafeCheckpointError(_unsafe_message(where, found, culprits), found) from None
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
    "refused_hyperparameters",
    "trust_from_env",
    "written_by_this_process",
]
