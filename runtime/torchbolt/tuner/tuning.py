"""`Tuner(trainer)`: `lr_find` and `scale_batch_size`, each a fit that stops once the search is done."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.datamodule import LightningDataModule
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer
    from torchbolt.tuner.lr_finder import _LRFinder


class TunerExit(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a finder callback used through the Tuner: the search is done, end the fit cleanly."""


_METHODS = ("fit", "validate", "test", "predict")


def _check_dataloader_args(train_dataloaders: Any, val_dataloaders: Any, dataloaders: Any, method: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"method {method!r} is invalid. Should be one of {_METHODS}.")
    if method == "fit":
        if dataloaders is not None:
            raise MisconfigurationException(
                f"In tuner with method={method!r}, `dataloaders` argument should be None, please consider setting "
                "`train_dataloaders` and `val_dataloaders` instead."
            )
    elif train_dataloaders is not None or val_dataloaders is not None:
        raise MisconfigurationException(
            f"In tuner with `method`={method!r}, `train_dataloaders` and `val_dataloaders` arguments should be None, "
            "please consider setting `dataloaders` instead."
        )


class Tuner:
    """Finds a learning rate (`lr_find`) or the largest batch size (`scale_batch_size`) for a Trainer."""

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def scale_batch_size(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        method: Literal["fit", "validate", "test", "predict"] = "fit",
        mode: str = "power",
        steps_per_trial: int = 3,
        init_val: int = 2,
        max_trials: int = 25,
        batch_arg_name: str = "batch_size",
        margin: float = 0.05,
        max_val: int = 8192,
    ) -> int | None:
        """Double (`mode="power"`) or binary-search (`"binsearch"`) the batch size stored in
        `model.<batch_arg_name>` (or hparams / the DataModule) until a trial of `steps_per_trial` steps runs
        out of memory, `max_trials` is reached or the dataset is covered; the result is left set and returned.
        `method` picks the run the trials come from: training steps ("fit") or batches of "validate", "test"
        or "predict" (with `dataloaders` or `datamodule` for those)."""
        from torchbolt.callbacks.batch_size_finder import BatchSizeFinder

        _check_dataloader_args(train_dataloaders, val_dataloaders, dataloaders, method)
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"`margin` should be between 0 and 1. Found margin={margin!r}")
        trainer = self._trainer
        if any(isinstance(cb, BatchSizeFinder) for cb in trainer.callbacks):
            raise ValueError("Trainer is already configured with a `BatchSizeFinder` callback. Please remove it if you "
                             "want to use the Tuner.")
        finder = BatchSizeFinder(mode=mode, steps_per_trial=steps_per_trial, init_val=init_val,
                                 max_trials=max_trials, batch_arg_name=batch_arg_name, margin=margin,
                                 max_val=max_val)
        finder._early_exit = True
        trainer.callbacks = [finder, *trainer.callbacks]
        try:
            if method == "fit":
                trainer.fit(model, train_dataloaders, val_dataloaders, datamodule)
            elif method == "validate":
                trainer.validate(model, dataloaders, datamodule=datamodule)
            elif method == "test":
                trainer.test(model, dataloaders, datamodule=datamodule)
            else:
                trainer.predict(model, dataloaders, datamodule=datamodule)
        finally:
            trainer.callbacks = [cb for cb in trainer.callbacks if cb is not finder]
        return finder.optimal_batch_size

    def lr_find(
        self,
        model: LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        dataloaders: Any = None,
        datamodule: LightningDataModule | None = None,
        method: Literal["fit", "validate", "test", "predict"] = "fit",
        min_lr: float = 1e-8,
        max_lr: float = 1,
        num_training: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
        update_attr: bool = True,
        attr_name: str = "",
    ) -> _LRFinder | None:
        """Train `num_training` steps with the lr growing from `min_lr` to `max_lr` (`mode` "exponential" or
        "linear"), stopping early when the loss exceeds `early_stop_threshold` times its best; returns the
        result (`.suggestion()`, `.plot()`) and, with `update_attr`, writes the suggestion into `lr` /
        `learning_rate` (or `attr_name`). The model's weights are restored afterwards."""
        from torchbolt.callbacks.lr_finder import LearningRateFinder

        if method != "fit":
            raise MisconfigurationException("method='fit' is the only valid configuration to run lr finder.")
        _check_dataloader_args(train_dataloaders, val_dataloaders, dataloaders, method)
        trainer = self._trainer
        if any(isinstance(cb, LearningRateFinder) for cb in trainer.callbacks):
            raise ValueError("Trainer is already configured with a `LearningRateFinder` callback. Please remove it if "
                             "you want to use the Tuner.")
        finder = LearningRateFinder(min_lr=min_lr, max_lr=max_lr, num_training_steps=num_training, mode=mode,
                                    early_stop_threshold=early_stop_threshold, update_attr=update_attr,
                                    attr_name=attr_name)
        finder._early_exit = True
        trainer.callbacks = [finder, *trainer.callbacks]
        try:
            trainer.fit(model, train_dataloaders, val_dataloaders, datamodule)
        finally:
            trainer.callbacks = [cb for cb in trainer.callbacks if cb is not finder]
        return finder.optimal_lr
