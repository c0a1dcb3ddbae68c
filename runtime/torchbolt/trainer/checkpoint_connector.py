"""What goes into a `.ckpt` and how it comes back, in Lightning 2.x's format (reference §2.5, §6.3).

Every hook (`on_save_checkpoint`, `on_load_checkpoint`, callbacks' and the DataModule's `state_dict` /
`load_state_dict`) runs through the Trainer's dispatcher, in the catalog's order. The Trainer calls:
- `dump_checkpoint(trainer, weights_only)` from `save_checkpoint`, then `torchbolt.checkpoint.io.atomic_save`;
- `resolve_ckpt_path(trainer, ckpt_path, fn)` to turn `"best"` / `"last"` / a path into a file;
- `restore_modules_and_callbacks(trainer, path)` after `configure_model` and before `configure_optimizers`
  (module `on_load_checkpoint`, weights, datamodule state, callbacks' `on_load_checkpoint` and
  `load_state_dict`), and `restore_training_state(trainer, checkpoint)` once optimizers exist (loops,
  optimizers, schedulers, precision state). `restore(trainer, path)` runs both, for callers that have
  their optimizers already.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import TYPE_CHECKING, Any

from torchbolt.checkpoint.io import load_for_caller
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

#: Written as `pytorch-lightning_version` so Lightning 2.x loads our files without running its migrations.
LIGHTNING_COMPAT_VERSION = "2.6.6"
#: Extra top-level key naming the torchbolt release that wrote the file (Lightning ignores unknown keys).
TORCHBOLT_VERSION_KEY = "torchbolt_version"

# keys of the hyper-parameters in the file (same names as LightningModule / LightningDataModule constants)
HPARAMS_KEY, HPARAMS_NAME, HPARAMS_TYPE = "hyper_parameters", "hparams_name", "hparams_type"
DM_HPARAMS_KEY, DM_HPARAMS_NAME, DM_HPARAMS_TYPE = (
    "datamodule_hyper_parameters", "datamodule_hparams_name", "datamodule_hparams_type",
)


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------
def _hparams_entries(obj: Any, key: str, name_key: str, type_key: str) -> dict[str, Any]:
    hparams = getattr(obj, "hparams", None) if obj is not None else None
    if not hparams:
        return {}
    entries: dict[str, Any] = {}
    hparams_name = getattr(obj, "_hparams_name", None)
    if hparams_name is not None:
        entries[name_key] = hparams_name
    if hasattr(hparams, "_content") and hasattr(type(hparams), "to_container"):  # an OmegaConf container
        entries[key] = hparams
        entries[type_key] = type(hparams)
    else:
        entries[key] = dict(hparams)
    return entries


def dump_checkpoint(trainer: Trainer, weights_only: bool | None = False) -> dict[str, Any]:
    """The checkpoint dict, keys in Lightning's order: counters and version, weights, loop progress; unless
    `weights_only`: callback states, optimizer and scheduler states, precision state; then hyper-parameters,
    datamodule state, and whatever `on_save_checkpoint` hooks (callbacks, then module) add."""
    import torchbolt

    model = trainer.lightning_module
    assert model is not None
    datamodule = trainer.datamodule
    hooks = trainer._hooks
    checkpoint: dict[str, Any] = {
        "epoch": trainer.current_epoch,
        "global_step": trainer.global_step,
        "pytorch-lightning_version": LIGHTNING_COMPAT_VERSION,
        TORCHBOLT_VERSION_KEY: torchbolt.__version__,
        "state_dict": model.state_dict(),
        "loops": trainer.loops_state_dict(),
    }
    callback_states, datamodule_state = hooks.collect_states(callbacks=not weights_only)
    if not weights_only:
        checkpoint["callbacks"] = callback_states
        checkpoint["optimizer_states"] = [opt.state_dict() for opt in trainer.optimizers]
        checkpoint["lr_schedulers"] = [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs]
        plugin = trainer.precision_plugin
        plugin_state = plugin.state_dict()
        if plugin_state:
            checkpoint[type(plugin).__qualname__] = plugin_state
    checkpoint.update(_hparams_entries(model, HPARAMS_KEY, HPARAMS_NAME, HPARAMS_TYPE))
    checkpoint.update(_hparams_entries(datamodule, DM_HPARAMS_KEY, DM_HPARAMS_NAME, DM_HPARAMS_TYPE))
    if datamodule is not None and datamodule_state:
        checkpoint[type(datamodule).__qualname__] = datamodule_state
    # callbacks only see the hook when their states are saved (not for weights-only files), as in Lightning
    if weights_only:
        hooks.call_part("on_save_checkpoint", "module", checkpoint)
    else:
        hooks.call("on_save_checkpoint", checkpoint)
    return checkpoint


# --------------------------------------------------------------------------------------------------
# Choosing the file
# --------------------------------------------------------------------------------------------------
def resolve_ckpt_path(
    trainer: Trainer,
    ckpt_path: str | os.PathLike[str] | None,
    fn: str,
    model_provided: bool = True,
    model_connected: bool = False,
) -> str | None:
    """Turn `ckpt_path` (None, "best", "last" or a path) into the file to restore, or None for no restore.

    - None: nothing, except that fitting with an `OnExceptionCheckpoint` resumes from "last", and
      validate/test/predict without a model after a fit use "best" (with a warning).
    - "best": the first ModelCheckpoint's `best_model_path` (ValueError if there is none).
    - "last": the newest of the ModelCheckpoints' `last*.ckpt` files and the OnExceptionCheckpoint's file
      (warning and None when none exists).
    - a path: returned as is (a missing file fails later, when loading, naming the path).
    """
    from torchbolt.callbacks.model_checkpoint import ModelCheckpoint
    from torchbolt.callbacks.on_exception_checkpoint import OnExceptionCheckpoint

    callbacks = list(trainer.callbacks)
    exception_ckpts = [cb for cb in callbacks if isinstance(cb, OnExceptionCheckpoint)]
    if ckpt_path is None and exception_ckpts and fn == "fit":
        ckpt_path = "last"
    if ckpt_path is None and model_provided:
        return None
    if ckpt_path is None and model_connected:
        ckpt_path = "best"
        warnings.warn(
            f"`.{fn}(ckpt_path=None)` was called without a model: the best model of the previous `fit` call is "
            f"used. Pass `.{fn}(ckpt_path='best')` or `.{fn}(ckpt_path='last')` to choose and silence this warning.",
            stacklevel=3,
        )
    if ckpt_path is None:
        return None
    if isinstance(ckpt_path, os.PathLike):
        return os.fspath(ckpt_path)
    checkpoint_callbacks = [cb for cb in callbacks if isinstance(cb, ModelCheckpoint)]
    if ckpt_path == "best":
        if len(checkpoint_callbacks) > 1:
            warnings.warn(
                f'`.{fn}(ckpt_path="best")` with several ModelCheckpoint callbacks uses the first one\'s best path.',
                stacklevel=3,
            )
        first = checkpoint_callbacks[0] if checkpoint_callbacks else None
        if first is None:
            raise ValueError(
                f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` is not configured: add a ModelCheckpoint '
                "callback (or keep enable_checkpointing=True), or pass a checkpoint path."
            )
        best = first.best_model_path
        if not best:
            if trainer.fast_dev_run:
                raise ValueError(
                    f'You cannot execute `.{fn}(ckpt_path="best")` with `fast_dev_run=True`: it saves no '
                    f"checkpoints. Pass an exact path to `.{fn}(ckpt_path=...)`."
                )
            raise ValueError(
                f'`.{fn}(ckpt_path="best")` is set but `ModelCheckpoint` has not saved a best model yet (did fit '
                "run, and does the monitored metric get logged?). Pass an exact path instead."
            )
        return best
    if ckpt_path == "last":
        candidates: set[str] = {cb.ckpt_path for cb in exception_ckpts}
        for callback in checkpoint_callbacks:
            candidates |= callback._find_last_checkpoints(trainer)
        existing = {p: os.path.getmtime(p) for p in candidates if p and os.path.exists(p)}
        if not existing:
            warnings.warn(
                f'`.{fn}(ckpt_path="last")` is set, but there is no last checkpoint available: nothing is restored. '
                "HINT: set `ModelCheckpoint(..., save_last=True)`.",
                stacklevel=3,
            )
            return None
        return max(existing, key=lambda p: existing[p])
    if ckpt_path == "hpc" or str(ckpt_path).startswith("registry"):
        raise ValueError(
            f'`.{fn}(ckpt_path="{ckpt_path}")` is not supported by torchbolt (no SLURM/HPC or model-registry '
            "integration). Pass a checkpoint file path, 'best' or 'last'."
        )
    return str(ckpt_path)


# --------------------------------------------------------------------------------------------------
# Restoring
# --------------------------------------------------------------------------------------------------
def load_checkpoint_file(path: str | os.PathLike[str], weights_only: bool | None = None) -> dict[str, Any]:
    """Read a checkpoint with the safe loader onto the CPU (`weights_only=False` trusts the file)."""
    checkpoint = load_for_caller(path, map_location="cpu", weights_only=weights_only)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise MisconfigurationException(
            f"{os.fspath(path)!r} is not a Lightning/torchbolt checkpoint: it holds "
            f"{type(checkpoint).__name__} without a 'state_dict' key. Save it with trainer.save_checkpoint()."
        )
    return checkpoint


def _load_model_state(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    model = trainer.lightning_module
    assert model is not None
    strict = model.strict_loading
    result = model.load_state_dict(checkpoint["state_dict"], strict=strict)
    if not strict and (result.missing_keys or result.unexpected_keys):
        warnings.warn(
            f"Loaded the checkpoint non-strictly: missing keys {result.missing_keys}, unexpected keys "
            f"{result.unexpected_keys}.",
            stacklevel=3,
        )


def restore_modules_and_callbacks(
    trainer: Trainer, path: str | os.PathLike[str], weights_only: bool | None = None
) -> dict[str, Any]:
    """Phase 1 (before `configure_optimizers`): module `on_load_checkpoint`, weights, datamodule state,
    callbacks' `on_load_checkpoint` and `load_state_dict`. Returns the loaded dict for phase 2."""
    checkpoint = load_checkpoint_file(path, weights_only=weights_only)
    log.info("Restoring states from the checkpoint path at %s", os.fspath(path))
    hooks = trainer._hooks
    hooks.call_part("on_load_checkpoint", "module", checkpoint)
    _load_model_state(trainer, checkpoint)
    datamodule = trainer.datamodule
    if datamodule is not None:
        hooks.load_datamodule_state(checkpoint.get(type(datamodule).__qualname__))
    hooks.call_part("on_load_checkpoint", "callbacks", checkpoint)
    hooks.load_callback_states(checkpoint.get("callbacks") or {})
    return checkpoint


def restore_training_state(trainer: Trainer, checkpoint: dict[str, Any]) -> None:
    """Phase 2 (optimizers exist): precision state, loop progress, and when fitting optimizer and scheduler
    states. Raises KeyError for a weights-only file when fitting."""
    plugin = trainer.precision_plugin
    key = type(plugin).__qualname__
    if key in checkpoint:
        plugin.load_state_dict(checkpoint[key])
    fn = trainer.state.fn.value if trainer.state.fn is not None else None
    loops = checkpoint.get("loops")
    if loops is not None:
        trainer.load_loops_state_dict(loops, fn)
    if fn != "fit":
        return
    max_epochs = trainer.max_epochs
    if max_epochs != -1 and trainer.current_epoch > max_epochs:
        raise MisconfigurationException(
            f"You restored a checkpoint with current_epoch={trainer.current_epoch}, but you have set "
            f"Trainer(max_epochs={max_epochs}). Raise max_epochs to continue training."
        )
    if "optimizer_states" not in checkpoint:
        raise KeyError(
            "Trying to restore optimizer state but checkpoint contains only the model. This is probably due to "
            "`ModelCheckpoint.save_weights_only` being set to `True`. Resume from a full checkpoint, or load the "
            "weights with `Model.load_from_checkpoint(path)` and start a new fit."
        )
    optimizers = trainer.optimizers
    states = checkpoint["optimizer_states"]
    if len(states) != len(optimizers):
        raise MisconfigurationException(
            f"The checkpoint holds {len(states)} optimizer state(s) but configure_optimizers returned "
            f"{len(optimizers)} optimizer(s): resume with the same optimizer setup."
        )
    for optimizer, state in zip(optimizers, states, strict=True):
        optimizer.load_state_dict(state)
    if "lr_schedulers" not in checkpoint:
        raise KeyError(
            "Trying to restore learning rate scheduler state but checkpoint contains only the model. This is "
            "probably due to `ModelCheckpoint.save_weights_only` being set to `True`."
        )
    for config, state in zip(trainer.lr_scheduler_configs, checkpoint["lr_schedulers"], strict=False):
        config.scheduler.load_state_dict(state)


def restore(trainer: Trainer, path: str | os.PathLike[str], weights_only: bool | None = None) -> dict[str, Any]:
    """Both phases at once, for a Trainer whose optimizers already exist (or for evaluation)."""
    checkpoint = restore_modules_and_callbacks(trainer, path, weights_only=weights_only)
    restore_training_state(trainer, checkpoint)
    return checkpoint
