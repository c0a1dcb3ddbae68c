"""`OnExceptionCheckpoint`: save a checkpoint when fit is interrupted by an exception (Ctrl-C included)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from torchbolt.callbacks.checkpoint import Checkpoint

if TYPE_CHECKING:
    from torchbolt.trainer.trainer import Trainer


class OnExceptionCheckpoint(Checkpoint):
    """Writes `<dirpath>/<filename>.ckpt` from `on_exception`. A later run that finishes normally removes it
    at teardown, so the file only exists while there is an interrupted run to resume
    (`fit(ckpt_path="last")` picks it up)."""

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike[str], filename: str = "on_exception") -> None:
        super().__init__()
        if not filename:
            raise ValueError("OnExceptionCheckpoint(filename=...) cannot be empty: give a file name without extension.")
        if dirpath is None or not isinstance(dirpath, (str, os.PathLike)):
            raise TypeError(f"OnExceptionCheckpoint(dirpath=...) must be a folder path, got {dirpath!r}.")
        self.dirpath = os.fspath(dirpath)
        self.filename = filename
        self._saved_this_run = False

    @property
    def ckpt_path(self) -> str:
        """Where the checkpoint is written."""
        return os.path.join(self.dirpath, self.filename + self.FILE_EXTENSION)

    def setup(self, trainer: Trainer, *_: Any, **__: Any) -> None:
        self._saved_this_run = False

    def on_exception(self, trainer: Trainer, *_: Any, **__: Any) -> None:
        trainer.save_checkpoint(self.ckpt_path)
        self._saved_this_run = True

    def teardown(self, trainer: Trainer, *_: Any, **__: Any) -> None:
        # teardown also runs after an interruption: keep the file written for that interruption
        if self._saved_this_run or not trainer.is_global_zero:
            return
        try:
            os.remove(self.ckpt_path)
        except FileNotFoundError:
            pass
