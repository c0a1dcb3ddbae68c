"""What one call of `fit` / `validate` / `test` / `predict` asked for: a frozen request per entry point.

The Trainer builds the request from the call's arguments (`make` checks how they combine) and hands it to
the run; nothing
about the call is stashed on the Trainer. Dataloader sources are keyed by the hook they stand in for
(`train_dataloader`, `val_dataloader`, `test_dataloader`, `predict_dataloader`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from torchbolt.trainer.state import TrainerFn
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.datamodule import LightningDataModule


@dataclass(frozen=True)
class RunRequest:
    """Common to every entry point."""

    fn: TrainerFn
    #: the caller passed a model (False: validate/test/predict reuse the fitted one, and "best" is restored)
    model_given: bool
    datamodule: LightningDataModule | None
    ckpt_path: str | os.PathLike[str] | None
    weights_only: bool | None
    #: dataloader passed to the call, by the hook it replaces (None values are left out)
    dataloaders: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def loader_source(self, hook: str) -> Any:
        """The dataloader(s) the call passed for `hook`, or None (then the DataModule or module provides them)."""
        return self.dataloaders.get(hook)

    def __reduce__(self) -> tuple[Any, ...]:
        # strategy='ddp_spawn' pickles the request into each process; a mappingproxy does not pickle.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["dataloaders"] = dict(self.dataloaders)
        return _rebuild_request, (type(self), values)


def _rebuild_request(cls: type[RunRequest], values: dict[str, Any]) -> RunRequest:
    return cls(**{**values, "dataloaders": MappingProxyType(values["dataloaders"])})


def _loaders(**given: Any) -> Mapping[str, Any]:
    return MappingProxyType({k: v for k, v in given.items() if v is not None})


def _split_eval_args(dataloaders: Any, datamodule: Any, fn: str) -> tuple[Any, Any]:
    """A DataModule passed as `dataloaders` counts as the datamodule; passing both is an error."""
    from torchbolt.core.datamodule import LightningDataModule

    if isinstance(dataloaders, LightningDataModule):
        datamodule, dataloaders = dataloaders, None
    if dataloaders is not None and datamodule is not None:
        raise MisconfigurationException(
            f"You cannot pass both `trainer.{fn}(dataloaders=..., datamodule=...)`: pass one of them."
        )
    return dataloaders, datamodule


@dataclass(frozen=True)
class FitRequest(RunRequest):
    """`trainer.fit(...)`."""

    @classmethod
    def make(cls, datamodule: Any, train: Any, val: Any, ckpt_path: Any, weights_only: bool | None) -> FitRequest:
        from torchbolt.core.datamodule import LightningDataModule

        if isinstance(train, LightningDataModule):
            datamodule, train = train, None
        if datamodule is not None and (train is not None or val is not None):
            raise MisconfigurationException(
                "You cannot pass `train_dataloader` or `val_dataloaders` to `trainer.fit(datamodule=...)`: pass "
                "either the dataloaders or the datamodule."
            )
        return cls(TrainerFn.FITTING, True, datamodule, ckpt_path, weights_only,
                   _loaders(train_dataloader=train, val_dataloader=val))


@dataclass(frozen=True)
class EvaluateRequest(RunRequest):
    """`trainer.validate(...)` or `trainer.test(...)`."""

    #: print the results table at the end
    verbose: bool = True

    @classmethod
    def make(cls, fn: TrainerFn, model_given: bool, datamodule: Any, dataloaders: Any, ckpt_path: Any,
             weights_only: bool | None, verbose: bool) -> EvaluateRequest:
        dataloaders, datamodule = _split_eval_args(dataloaders, datamodule, fn.value)
        hook = "val_dataloader" if fn == TrainerFn.VALIDATING else "test_dataloader"
        return cls(fn, model_given, datamodule, ckpt_path, weights_only, _loaders(**{hook: dataloaders}),
                   verbose=bool(verbose))


@dataclass(frozen=True)
class PredictRequest(RunRequest):
    """`trainer.predict(...)`."""

    #: keep and return every predict_step output
    return_predictions: bool = True

    @classmethod
    def make(cls, model_given: bool, datamodule: Any, dataloaders: Any, ckpt_path: Any, weights_only: bool | None,
             return_predictions: bool | None) -> PredictRequest:
        dataloaders, datamodule = _split_eval_args(dataloaders, datamodule, "predict")
        return cls(TrainerFn.PREDICTING, model_given, datamodule, ckpt_path, weights_only,
                   _loaders(predict_dataloader=dataloaders),
                   return_predictions=True if return_predictions is None else bool(return_predictions))
