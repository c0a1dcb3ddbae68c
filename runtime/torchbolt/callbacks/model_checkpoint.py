"""`ModelCheckpoint`: save checkpoints on a schedule and keep the best k by a monitored metric.

Every write goes through `trainer.save_checkpoint` (atomic: temp file + fsync + rename), and a checkpoint
that drops out of the top k is deleted only after its replacement has been written completely.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import time
import warnings
from copy import deepcopy
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from torchbolt.callbacks.checkpoint import (
    Checkpoint,
    checks_on_train_epoch_end,
    is_fitting,
    num_val_batches,
    validation_has_run,
)
from torchbolt.checkpoint.io import atomic_symlink, remove_stale_temp_files
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

_PATH = str | os.PathLike


class ModelCheckpoint(Checkpoint):
    """Saves a checkpoint every `every_n_epochs` epochs (default 1), every `every_n_train_steps` optimizer
    steps or every `train_time_interval`, keeping the `save_top_k` best by `monitor` (or the latest when no
    `monitor` is given), plus `last.ckpt` when `save_last` is set.

    `filename` is a template such as `"{epoch}-{val_loss:.2f}"`: each `{name}` is filled from the logged
    metrics (plus `epoch` and `step`), as `name=value` when `auto_insert_metric_name` is true.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"
    STARTING_VERSION = 1

    _monitoring = True  # runs its on_train_epoch_end after the LightningModule's

    def __init__(
        self,
        dirpath: _PATH | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
    ) -> None:
        super().__init__()
        if save_last not in (None, True, False, "link"):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_last={save_last!r}) is invalid: use True, False, None or 'link'."
            )
        if not isinstance(save_top_k, int) or isinstance(save_top_k, bool):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={save_top_k!r}) must be an int: 0 saves none, -1 keeps all, k keeps k."
            )
        if train_time_interval is not None and not isinstance(train_time_interval, timedelta):
            raise MisconfigurationException(
                f"ModelCheckpoint(train_time_interval={train_time_interval!r}) must be a datetime.timedelta, "
                "e.g. timedelta(minutes=30)."
            )
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_on_exception = save_on_exception
        self.save_weights_only = save_weights_only
        self.auto_insert_metric_name = auto_insert_metric_name
        self._save_on_train_epoch_end = save_on_train_epoch_end
        self._enable_version_counter = enable_version_counter
        self._last_global_step_saved = 0  # nothing to save before the first optimizer step
        self._last_time_checked: float | None = None
        self._defer_save_until_validation = False
        self.current_score: Tensor | None = None
        self.best_k_models: dict[str, Tensor] = {}
        self.kth_best_model_path = ""
        self.best_model_score: Tensor | None = None
        self.best_model_path = ""
        self.last_model_path = ""
        self._last_checkpoint_saved = ""

        if mode not in ("min", "max"):
            raise MisconfigurationException(f"ModelCheckpoint(mode={mode!r}) is invalid: use 'min' or 'max'.")
        self.mode = mode
        self.kth_value: Tensor = torch.tensor(math.inf if mode == "min" else -math.inf)

        if dirpath is not None:
            dirpath = os.path.realpath(os.path.expanduser(os.fspath(dirpath)))
        self.dirpath: str | None = dirpath
        self.filename = filename

        if every_n_train_steps is None and every_n_epochs is None and train_time_interval is None:
            every_n_epochs, every_n_train_steps = 1, 0
        self._every_n_epochs: int = every_n_epochs or 0
        self._every_n_train_steps: int = every_n_train_steps or 0
        self._train_time_interval: timedelta | None = train_time_interval
        self._validate_configuration()

    # ----------------------------------------------------------------------------------------------
    def _validate_configuration(self) -> None:
        if self.save_top_k < -1:
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={self.save_top_k}) is invalid: it must be >= -1 "
                "(-1 keeps every checkpoint, 0 saves none)."
            )
        if self._every_n_train_steps < 0:
            raise MisconfigurationException(
                f"ModelCheckpoint(every_n_train_steps={self._every_n_train_steps}) is invalid: it must be >= 0."
            )
        if self._every_n_epochs < 0:
            raise MisconfigurationException(
                f"ModelCheckpoint(every_n_epochs={self._every_n_epochs}) is invalid: it must be >= 0."
            )
        triggers = [
            name for name, on in (
                ("every_n_train_steps", self._every_n_train_steps >= 1),
                ("every_n_epochs", self._every_n_epochs >= 1),
                ("train_time_interval", self._train_time_interval is not None),
            ) if on
        ]
        if len(triggers) > 1:
            raise MisconfigurationException(
                f"ModelCheckpoint got {', '.join(triggers)}: these triggers are mutually exclusive. "
                "Keep one, or use two ModelCheckpoint callbacks."
            )
        if self.monitor is None and self.save_top_k not in (-1, 0, 1):
            raise MisconfigurationException(
                f"ModelCheckpoint(save_top_k={self.save_top_k}, monitor=None) cannot rank checkpoints: "
                "set `monitor` to a logged metric, or use save_top_k in (-1, 0, 1)."
            )

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_train_steps=self._every_n_train_steps,
            every_n_epochs=self._every_n_epochs,
            train_time_interval=self._train_time_interval,
        )

    @property
    def every_n_epochs(self) -> int | None:
        return self._every_n_epochs

    # ----------------------------------------------------------------------------------------------
    # Hooks
    # ----------------------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.dirpath = self._resolve_ckpt_dir(trainer)
        if trainer.is_global_zero and stage == "fit":
            removed = remove_stale_temp_files(self.dirpath)
            if removed:
                log.info("Removed %d incomplete checkpoint file(s) left by a killed run in %s",
                         len(removed), self.dirpath)
            if self.save_top_k != 0 and os.path.isdir(self.dirpath) and os.listdir(self.dirpath):
                warnings.warn(f"Checkpoint directory {self.dirpath} exists and is not empty.", stacklevel=2)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last_time_checked = time.monotonic()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Step- and time-based saves."""
        skip_batch = self._every_n_train_steps < 1 or trainer.global_step % self._every_n_train_steps != 0
        skip_time = True
        now = 0.0
        if self._train_time_interval is not None:
            now = time.monotonic()  # read only when a time interval is configured (this runs every batch)
            previous = self._last_time_checked
            skip_time = previous is None or now - previous < self._train_time_interval.total_seconds()
        if skip_batch and skip_time:
            return
        if not skip_time:
            self._last_time_checked = now
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in candidates:
            # the monitored value comes from validation: save once it has run
            self._defer_save_until_validation = True
            return
        if (
            self.monitor is not None
            and not self._should_save_on_train_epoch_end(trainer)
            and trainer.is_last_batch
            and self._validation_follows_epoch(trainer)
        ):
            # the epoch's last batch with validation right after: rank by the fresh validation value
            self._defer_save_until_validation = True
            return
        # Checked last: this runs after every batch and the cheap step/time tests above usually return first.
        if self._should_skip_saving_checkpoint(trainer):
            return
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Epoch-based saves when checking at the training epoch's end."""
        if self._should_skip_saving_checkpoint(trainer) or not self._should_save_on_train_epoch_end(trainer):
            return
        self._save_on_epoch_boundary(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Epoch-based (and deferred step-based) saves when checking after validation."""
        if self._should_skip_saving_checkpoint(trainer) or self._should_save_on_train_epoch_end(trainer):
            return
        if self._defer_save_until_validation:
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)
            self._defer_save_until_validation = False
            return
        self._save_on_epoch_boundary(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """With `save_on_exception=True`, save the current state when fit raises."""
        if not (
            self.save_on_exception
            and not trainer.fast_dev_run
            and not trainer.sanity_checking
            and self._last_global_step_saved != trainer.global_step
        ):
            return
        candidates = self._monitor_candidates(trainer)
        filepath = self.format_checkpoint_name(candidates)
        self._save_checkpoint(trainer, filepath)
        self._save_last_checkpoint(trainer, candidates)
        log.info("%s raised (%s): saved checkpoint to %s", type(exception).__name__, exception, filepath)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.save_last and not self._last_checkpoint_saved:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # ----------------------------------------------------------------------------------------------
    # State
    # ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best_model_score": self.best_model_score,
            "best_model_path": self.best_model_path,
            "current_score": self.current_score,
            "dirpath": self.dirpath,
            "best_k_models": self.best_k_models,
            "kth_best_model_path": self.kth_best_model_path,
            "kth_value": self.kth_value,
            "last_model_path": self.last_model_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the bookkeeping; only `best_model_path` is kept when the folder changed since the save."""
        saved_dir = state_dict.get("dirpath", self.dirpath)
        if self.dirpath == saved_dir:
            self.best_model_score = state_dict["best_model_score"]
            self.kth_best_model_path = state_dict.get("kth_best_model_path", self.kth_best_model_path)
            self.kth_value = state_dict.get("kth_value", self.kth_value)
            self.best_k_models = state_dict.get("best_k_models", self.best_k_models)
            self.last_model_path = state_dict.get("last_model_path", self.last_model_path)
        else:
            warnings.warn(
                f"ModelCheckpoint's folder changed from {saved_dir!r} to {self.dirpath!r}: only `best_model_path` "
                "is restored; the top-k bookkeeping starts afresh.",
                stacklevel=2,
            )
        self.best_model_path = state_dict["best_model_path"]

    # ----------------------------------------------------------------------------------------------
    # Decisions
    # ----------------------------------------------------------------------------------------------
    def _should_skip_saving_checkpoint(self, trainer: Trainer) -> bool:
        return (
            trainer.fast_dev_run
            or not is_fitting(trainer)
            or trainer.sanity_checking
            or self._last_global_step_saved == trainer.global_step
        )

    def _should_save_on_train_epoch_end(self, trainer: Trainer) -> bool:
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        return checks_on_train_epoch_end(trainer)

    @staticmethod
    def _validation_follows_epoch(trainer: Trainer) -> bool:
        if not trainer.enable_validation or num_val_batches(trainer) <= 0:
            return False
        every = trainer.check_val_every_n_epoch
        return every is None or (trainer.current_epoch + 1) % every == 0

    def _save_on_epoch_boundary(self, trainer: Trainer) -> None:
        candidates = self._monitor_candidates(trainer)
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_topk_checkpoint(trainer, candidates)
        if self._last_global_step_saved == trainer.global_step or (
            self.save_last == "link" and self._last_checkpoint_saved
        ):
            self._save_last_checkpoint(trainer, candidates)

    def check_monitor_top_k(self, trainer: Trainer, current: Tensor | None = None) -> bool:
        """Whether a checkpoint scoring `current` belongs in the top k."""
        if current is None:
            return False
        if self.save_top_k == -1 or len(self.best_k_models) < self.save_top_k:
            return True
        kth = self.best_k_models[self.kth_best_model_path]
        better = torch.lt if self.mode == "min" else torch.gt
        return bool(better(current, kth))

    def _monitor_candidates(self, trainer: Trainer) -> dict[str, Tensor]:
        candidates: dict[str, Any] = deepcopy(dict(trainer.callback_metrics))
        epoch = candidates.get("epoch")
        candidates["epoch"] = epoch.int() if isinstance(epoch, Tensor) else torch.tensor(trainer.current_epoch)
        step = candidates.get("step")
        candidates["step"] = step.int() if isinstance(step, Tensor) else torch.tensor(trainer.global_step)
        return candidates

    # ----------------------------------------------------------------------------------------------
    # Saving
    # ----------------------------------------------------------------------------------------------
    def _save_topk_checkpoint(self, trainer: Trainer, candidates: dict[str, Tensor]) -> None:
        if self.save_top_k == 0:
            return
        if self.monitor is None:
            self._save_none_monitor_checkpoint(trainer, candidates)
            return
        if self.monitor not in candidates:
            available = sorted(k for k in candidates if k not in ("epoch", "step"))
            message = (
                f"`ModelCheckpoint(monitor={self.monitor!r})` could not find the monitored key in the logged "
                f"metrics: {available}. HINT: Did you call `self.log({self.monitor!r}, value)` in the "
                "`LightningModule`?"
            )
            if validation_has_run(trainer):
                raise MisconfigurationException(message)
            warnings.warn(message, stacklevel=2)
        current = candidates.get(self.monitor)
        if self.check_monitor_top_k(trainer, current):
            assert current is not None
            self._update_best_and_save(current, trainer, candidates)
        elif self.verbose:
            log.info("Epoch %d, global step %d: %r was not in top %d",
                     int(candidates["epoch"]), int(candidates["step"]), self.monitor, self.save_top_k)

    def _save_none_monitor_checkpoint(self, trainer: Trainer, candidates: dict[str, Tensor]) -> None:
        filepath = self._versioned_name(candidates, trainer, self.best_model_path)
        previous, self.best_model_path = self.best_model_path, filepath
        self._save_checkpoint(trainer, filepath)
        # only now that the new file is complete may the old one go
        if self.save_top_k == 1 and previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _update_best_and_save(self, current: Tensor, trainer: Trainer, candidates: dict[str, Tensor]) -> None:
        k = len(self.best_k_models) + 1 if self.save_top_k == -1 else self.save_top_k
        to_delete: str | None = None
        if len(self.best_k_models) == k and k > 0:
            to_delete = self.kth_best_model_path
            self.best_k_models.pop(to_delete)
        if not isinstance(current, Tensor):
            current = torch.tensor(float(current))
        if torch.isnan(current):
            # a NaN never ranks above a real value
            current = torch.tensor(math.inf if self.mode == "min" else -math.inf, device=current.device)
        filepath = self._versioned_name(candidates, trainer, to_delete)
        self.current_score = current
        self.best_k_models[filepath] = current
        if len(self.best_k_models) == k:
            worst = max if self.mode == "min" else min
            self.kth_best_model_path = worst(self.best_k_models, key=lambda p: float(self.best_k_models[p]))
            self.kth_value = self.best_k_models[self.kth_best_model_path]
        best = min if self.mode == "min" else max
        self.best_model_path = best(self.best_k_models, key=lambda p: float(self.best_k_models[p]))
        self.best_model_score = self.best_k_models[self.best_model_path]
        if self.verbose:
            log.info("Epoch %d, global step %d: %r reached %.5f (best %.5f), saving model to %r as top %d",
                     int(candidates["epoch"]), int(candidates["step"]), self.monitor, float(current),
                     float(self.best_model_score), filepath, k)
        self._save_checkpoint(trainer, filepath)
        if to_delete and self._should_remove_checkpoint(trainer, to_delete, filepath):
            self._remove_checkpoint(trainer, to_delete)

    def _save_last_checkpoint(self, trainer: Trainer, candidates: dict[str, Tensor]) -> None:
        if not self.save_last:
            return
        filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while self.file_exists(filepath, trainer) and filepath != self.last_model_path:
                filepath = self.format_checkpoint_name(candidates, self.CHECKPOINT_NAME_LAST, ver=version)
                version += 1
        previous, self.last_model_path = self.last_model_path, filepath
        if self.save_last == "link" and self._last_checkpoint_saved and self.save_top_k != 0:
            self._link_checkpoint(trainer, self._last_checkpoint_saved, filepath)
        else:
            self._save_checkpoint(trainer, filepath)
        if previous and self._should_remove_checkpoint(trainer, previous, filepath):
            self._remove_checkpoint(trainer, previous)

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if self.verbose:
            log.info("Saved checkpoint %s", filepath)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

    @staticmethod
    def _link_checkpoint(trainer: Trainer, filepath: str, linkpath: str) -> None:
        if not trainer.is_global_zero:
            return
        if os.path.abspath(filepath) == os.path.abspath(linkpath):
            return
        if os.path.isdir(linkpath) and not os.path.islink(linkpath):
            shutil.rmtree(linkpath)
        try:
            atomic_symlink(filepath, linkpath)
        except OSError:
            # filesystems without symlinks get a copy (still atomically, via the save path)
            tmp = f"{linkpath}.{os.getpid()}.copy.tmp"
            shutil.copyfile(filepath, tmp)
            os.replace(tmp, linkpath)

    def _should_remove_checkpoint(self, trainer: Trainer, previous: str, current: str) -> bool:
        """Never delete the file just written, a file outside `dirpath`, or the file this run resumed from."""
        if previous == current:
            return False
        previous_path = Path(previous).absolute()
        resumed_from = trainer.ckpt_path
        if resumed_from is not None and previous_path == Path(resumed_from).absolute():
            return False
        assert self.dirpath is not None
        return Path(self.dirpath).absolute() in previous_path.parents

    def _remove_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        if trainer.is_global_zero:
            try:
                os.remove(filepath)
            except FileNotFoundError:
                pass

    # ----------------------------------------------------------------------------------------------
    # Names
    # ----------------------------------------------------------------------------------------------
    def _resolve_ckpt_dir(self, trainer: Trainer) -> str:
        """`dirpath`, else `<first logger's save_dir>/<name>/<version>/checkpoints`, else
        `<default_root_dir>/checkpoints`."""
        if self.dirpath is not None:
            return self.dirpath
        loggers = list(trainer.loggers)
        if loggers:
            first = loggers[0]
            save_dir = first.save_dir if first.save_dir is not None else trainer.default_root_dir
            version = first.version
            version = version if isinstance(version, str) else f"version_{version}"
            return os.path.join(save_dir, str(first.name), version, "checkpoints")
        return os.path.join(trainer.default_root_dir, "checkpoints")

    def _format_checkpoint_name(
        self,
        filename: str | None,
        metrics: dict[str, Any],
        prefix: str | None = None,
        auto_insert_metric_name: bool = True,
    ) -> str:
        if not filename:
            filename = "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        # a group runs from '{' to the first ':' or '}' (names may hold '.', '/', '-')
        groups = sorted(set(re.findall(r"(\{.*?)[:\}]", filename)), key=len, reverse=True)
        for group in groups:
            name = group[1:]
            if auto_insert_metric_name:
                filename = filename.replace(group, name + self.CHECKPOINT_EQUALS_CHAR + "{" + name)
            filename = filename.replace(group, "{0[" + name + "]")
            if name not in metrics:
                metrics[name] = torch.tensor(0)
        filename = filename.format(metrics)
        if prefix is not None:
            filename = self.CHECKPOINT_JOIN_CHAR.join([prefix, filename])
        return filename

    def format_checkpoint_name(
        self,
        metrics: dict[str, Any],
        filename: str | None = None,
        ver: int | None = None,
        prefix: str | None = None,
    ) -> str:
        """The checkpoint path for these metrics: e.g. `'{epoch}-{val_loss:.2f}'` with epoch=2, val_loss=0.1234
        gives `<dirpath>/epoch=2-val_loss=0.12.ckpt`; `ver=1` appends `-v1`."""
        name = self._format_checkpoint_name(
            filename or self.filename, dict(metrics), prefix=prefix,
            auto_insert_metric_name=self.auto_insert_metric_name,
        )
        if ver is not None:
            name = self.CHECKPOINT_JOIN_CHAR.join((name, f"v{ver}"))
        name = f"{name}{self.FILE_EXTENSION}"
        return os.path.join(self.dirpath, name) if self.dirpath else name

    def _versioned_name(self, candidates: dict[str, Tensor], trainer: Trainer, replacing: str | None) -> str:
        filepath = self.format_checkpoint_name(candidates)
        if self._enable_version_counter:
            version = self.STARTING_VERSION
            while self.file_exists(filepath, trainer) and filepath != replacing:
                filepath = self.format_checkpoint_name(candidates, ver=version)
                version += 1
        return filepath

    def file_exists(self, filepath: _PATH, trainer: Trainer) -> bool:
        """Whether `filepath` exists (a dangling `last` link counts as existing)."""
        return os.path.lexists(filepath)

    def _find_last_checkpoints(self, trainer: Trainer) -> set[str]:
        """Every `last*.ckpt` in the resolved folder (used by `ckpt_path="last"`)."""
        folder = self._resolve_ckpt_dir(trainer)
        pattern = re.compile(rf"^{self.CHECKPOINT_NAME_LAST}(-(v)?\d+)?$")
        if not os.path.isdir(folder):
            return set()
        return {
            os.path.normpath(os.path.join(folder, entry))
            for entry in os.listdir(folder)
            if entry.endswith(self.FILE_EXTENSION) and pattern.match(entry[: -len(self.FILE_EXTENSION)])
        }

    def to_yaml(self, filepath: _PATH | None = None) -> None:
        """Write `best_k_models` (path → score) to `filepath` (default `<dirpath>/best_k_models.yaml`)."""
        import yaml

        if filepath is None:
            if self.dirpath is None:
                raise MisconfigurationException(
                    "ModelCheckpoint.to_yaml() needs a folder: pass `filepath` or set `dirpath`."
                )
            filepath = os.path.join(self.dirpath, "best_k_models.yaml")
        scores = {path: float(score) for path, score in self.best_k_models.items()}
        with open(filepath, "w", encoding="utf-8") as f:
            yaml.safe_dump(scores, f)
