"""BatchSizeFinder: find the largest batch size that fits when fit starts, then train with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


class BatchSizeFinder(Callback):
    """At the start of fit, validate, test or predict, grows `<batch_arg_name>` on the module (or its hparams
    / the DataModule) by doubling (`mode="power"`) or binary search (`"binsearch"`), with trials of
    `steps_per_trial` training steps (or evaluation / prediction batches), until memory runs out,
    `max_trials` or `max_val` is reached, or one batch covers the dataset. The result is left set and
    kept in `self.optimal_batch_size`; weights, progress and the Trainer's settings are restored."""

    SUPPORTED_MODES = ("power", "binsearch")

    def __init__(self, mode: str = "power", steps_per_trial: int = 3, init_val: int = 2, max_trials: int = 25,
                 batch_arg_name: str = "batch_size", margin: float = 0.05, max_val: int = 8192) -> None:
        mode = mode.lower()
        if mode not in self.SUPPORTED_MODES:
            raise ValueError(f"`mode` should be either of {self.SUPPORTED_MODES}")
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"`margin` should be between 0 and 1. Found margin={margin!r}")
        self.optimal_batch_size: int | None = init_val
        self._mode = mode
        self._steps_per_trial = steps_per_trial
        self._init_val = init_val
        self._max_trials = max_trials
        self._batch_arg_name = batch_arg_name
        self._margin = margin
        self._max_val = max_val
        self._early_exit = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        from torchbolt.strategies import ParallelStrategy
        from torchbolt.tuner.attributes import check_batch_arg

        if isinstance(trainer.strategy, ParallelStrategy):
            raise MisconfigurationException("The Batch size finder is not supported with distributed strategies.")
        hook = {"fit": "train_dataloader", "validate": "val_dataloader", "test": "test_dataloader",
                "predict": "predict_dataloader"}[stage]
        if trainer._loops.sources._given(hook) is not None:
            # a dataloader built outside cannot be rebuilt with another batch size
            raise MisconfigurationException(
                f"The Batch size finder cannot be used with dataloaders passed directly to `.{stage}()`. Please "
                "disable the feature or incorporate the dataloader into your LightningModule or "
                "LightningDataModule."
            )
        check_batch_arg(pl_module, self._batch_arg_name)

    def scale_batch_size(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from torchbolt.tuner.batch_size_scaling import scale_batch_size

        self.optimal_batch_size = scale_batch_size(
            trainer, mode=self._mode, steps_per_trial=self._steps_per_trial, init_val=self._init_val,
            max_trials=self._max_trials, batch_arg_name=self._batch_arg_name, margin=self._margin,
            max_val=self._max_val)
        if self._early_exit:
            from torchbolt.tuner.tuning import TunerExit

            raise TunerExit()

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.scale_batch_size(trainer, pl_module)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # only trainer.validate's own run: not the sanity check nor validation inside fit
        if trainer.sanity_checking or trainer.state.fn != "validate":
            return
        self._check_single_loader(trainer, "validate")
        self.scale_batch_size(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check_single_loader(trainer, "test")
        self.scale_batch_size(trainer, pl_module)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check_single_loader(trainer, "predict")
        self.scale_batch_size(trainer, pl_module)

    @staticmethod
    def _check_single_loader(trainer: Trainer, key: str) -> None:
        loaders = trainer._loops.sources.eval_loaders.get(key, [])
        if len(loaders) > 1:
            prefix = "val" if key == "validate" else key
            raise MisconfigurationException(
                f"The Batch size finder cannot be used with multiple {prefix} dataloaders."
            )
