"""Checkpoint IO plugins: how checkpoint dictionaries reach storage and come back.

`TorchCheckpointIO` writes atomically (`torchbolt.checkpoint.io.atomic_save`) and reads without running
code from the file (`load_for_caller`); `AsyncCheckpointIO` moves the write to a background thread so
training continues while the file is written.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from torch import Tensor

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.checkpoint.io import atomic_save, load_for_caller
from torchbolt.utilities.apply_func import apply_to_collection


class CheckpointIO:
    """Interface: save, load and remove checkpoint dictionaries. Subclass it for other storage."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        """Write `checkpoint` to `path`."""
        raise NotImplementedError

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> Any:
        """Read the checkpoint at `path`."""
        raise NotImplementedError

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        """Delete the checkpoint at `path` (a file or a sharded folder)."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Finish pending work (called when the run ends)."""


class TorchCheckpointIO(CheckpointIO):
    """Local files through torch.save/torch.load, written atomically and read safely."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(
                f"TorchCheckpointIO.save_checkpoint(storage_options={storage_options!r}): local files take no "
                "storage options; pass a custom CheckpointIO plugin to use them."
            )
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> Any:
        return load_for_caller(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        target = Path(path)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


class AsyncCheckpointIO(CheckpointIO):
    """Writes in one background thread through another CheckpointIO (TorchCheckpointIO by default).

    Tensors are copied before the write is queued, so the next optimizer step cannot change what is
    being written. An error in a background write is raised at the next save or at teardown.
    """

    def __init__(self, checkpoint_io: CheckpointIO | None = None) -> None:
        self.checkpoint_io = checkpoint_io or TorchCheckpointIO()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def _raise_finished_errors(self, wait: bool) -> None:
        pending, self._pending = self._pending, []
        for i, future in enumerate(pending):
            if wait or future.done():
                try:
                    future.result()  # re-raises the background error here, once
                except BaseException:
                    self._pending.extend(pending[i + 1:])  # the rest are raised or kept next time
                    raise
            else:
                self._pending.append(future)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        self._raise_finished_errors(wait=False)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torchbolt-ckpt")
        snapshot = apply_to_collection(checkpoint, Tensor, lambda t: t.detach().clone())
        self._pending.append(
            self._executor.submit(self.checkpoint_io.save_checkpoint, snapshot, path, storage_options)
        )

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> Any:
        self._raise_finished_errors(wait=True)  # a file being written must be complete before it is read
        return self.checkpoint_io.load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        self._raise_finished_errors(wait=True)
        self.checkpoint_io.remove_checkpoint(path)

    def teardown(self) -> None:
        try:
            self._raise_finished_errors(wait=True)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            self.checkpoint_io.teardown()


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
