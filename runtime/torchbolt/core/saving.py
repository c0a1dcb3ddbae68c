"""`load_from_checkpoint` for LightningModule and LightningDataModule (reads files via torchbolt.checkpoint.io)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import IO, Any

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr


def _read_hparams_file(path: str | Path) -> dict[str, Any]:
    import yaml

    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"hparams_file {str(path)!r} must hold a mapping of names to values, got {type(data).__name__}.")
    return data


def _build(cls: type, saved: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """`cls(**saved hyper-parameters, **overrides)`, or through the saved `_instantiator` (the function
    LightningCLI recorded, which also rebuilds the subclass named by `_class_path`)."""
    path = saved.pop("_instantiator", None)
    if path is None:
        return cls(**_init_kwargs(cls, saved, overrides))
    import importlib

    module_name, _, name = str(path).rpartition(".")
    if module_name.startswith("lightning.pytorch") or module_name.startswith("pytorch_lightning"):
        module_name = "torchbolt.cli"  # a checkpoint written by Lightning's CLI: torchbolt's own equivalent
    instantiator = getattr(importlib.import_module(module_name), name)
    return instantiator(cls, {**saved, **overrides})


def _init_kwargs(cls: type, saved: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = dict(saved) if accepts_any else {k: v for k, v in saved.items() if k in params}
    kwargs.update(overrides)
    return kwargs


def load_checkpoint_dict(path: str | Path | IO[bytes], map_location: Any, weights_only: bool | None) -> dict[str, Any]:
    """Read a checkpoint dict safely (see `torchbolt.checkpoint.io.load_for_caller`)."""
    from torchbolt.checkpoint.io import load_for_caller

    checkpoint = load_for_caller(path, map_location=map_location, weights_only=weights_only)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path!r} does not hold a checkpoint dict (found {type(checkpoint).__name__}).")
    return checkpoint


def load_module_from_checkpoint(
    cls: type,
    checkpoint_path: str | Path | IO[bytes],
    map_location: Any = None,
    hparams_file: str | Path | None = None,
    strict: bool | None = None,
    weights_only: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Build `cls` from a checkpoint: saved hyper-parameters (kwargs win), configure_model, weights, hooks."""
    if not isinstance(cls, type):
        raise TypeError(
            "load_from_checkpoint is a class method: call MyModule.load_from_checkpoint(path), not on an instance."
        )
    from torchbolt.core.module import LightningModule

    checkpoint = load_checkpoint_dict(checkpoint_path, map_location, weights_only)
    saved = dict(checkpoint.get(LightningModule.CHECKPOINT_HYPER_PARAMS_KEY) or {})
    if hparams_file is not None:
        saved.update(_read_hparams_file(hparams_file))
    model = _build(cls, saved, kwargs)
    if type(model).configure_model is not LightningModule.configure_model:
        model.configure_model()
    model.on_load_checkpoint(checkpoint)
    if "state_dict" not in checkpoint:
        raise KeyError(f"Checkpoint {checkpoint_path!r} has no 'state_dict' entry; it was not written by a Trainer.")
    use_strict = model.strict_loading if strict is None else strict
    model.load_state_dict(checkpoint["state_dict"], strict=use_strict)
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        model.to(map_location)
    return model


def load_datamodule_from_checkpoint(
    cls: type,
    checkpoint_path: str | Path | IO[bytes],
    map_location: Any = None,
    hparams_file: str | Path | None = None,
    weights_only: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Build a LightningDataModule from the hyper-parameters and state saved in a checkpoint."""
    if not isinstance(cls, type):
        raise TypeError("load_from_checkpoint is a class method: call MyDataModule.load_from_checkpoint(path).")
    checkpoint = load_checkpoint_dict(checkpoint_path, map_location, weights_only)
    saved = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    if hparams_file is not None:
        saved.update(_read_hparams_file(hparams_file))
    datamodule = _build(cls, saved, kwargs)
    state = checkpoint.get(cls.__qualname__)
    if state:
        datamodule.load_state_dict(state)
    return datamodule


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
