"""LightningDataModule: the data side of a run (download, split, dataloaders) kept apart from the model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from torchbolt.core.hooks import DataHooks
from torchbolt.utilities.hparams import HyperparametersMixin

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from torchbolt.trainer.trainer import Trainer


class LightningDataModule(DataHooks, HyperparametersMixin):
    """Base class for datamodules: override `setup` and the dataloader hooks you need.

    When both the DataModule and the LightningModule override a batch-transfer hook, the DataModule's runs.
    """

    name: str | None = None
    CHECKPOINT_HYPER_PARAMS_KEY = "datamodule_hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "datamodule_hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "datamodule_hparams_type"

    def __init__(self) -> None:
        super().__init__()
        self.trainer: Trainer | None = None

    @classmethod
    def from_datasets(
        cls,
        train_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        val_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        test_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        predict_dataset: Dataset[Any] | Iterable[Dataset[Any]] | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
        **datamodule_kwargs: Any,
    ) -> LightningDataModule:
        """A DataModule whose dataloaders wrap the given datasets (training ones shuffled)."""
        from torch.utils.data import DataLoader, IterableDataset

        def loader(ds: Dataset[Any], shuffle: bool) -> DataLoader[Any]:
            shuffle &= not isinstance(ds, IterableDataset)
            return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers)

        def loaders(ds: Any, shuffle: bool) -> Any:
            if isinstance(ds, Mapping):
                return {key: loader(value, shuffle) for key, value in ds.items()}
            if isinstance(ds, (list, tuple)):
                return [loader(value, shuffle) for value in ds]
            return loader(ds, shuffle)

        datamodule = cls(**datamodule_kwargs)
        if train_dataset is not None:
            datamodule.train_dataloader = lambda: loaders(train_dataset, True)  # type: ignore[method-assign]
        if val_dataset is not None:
            datamodule.val_dataloader = lambda: loaders(val_dataset, False)  # type: ignore[method-assign]
        if test_dataset is not None:
            datamodule.test_dataloader = lambda: loaders(test_dataset, False)  # type: ignore[method-assign]
        if predict_dataset is not None:
            datamodule.predict_dataloader = lambda: loaders(predict_dataset, False)  # type: ignore[method-assign]
        return datamodule

    def state_dict(self) -> dict[str, Any]:
        """State to save in checkpoints (under the class name) when non-empty."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state returned by `state_dict`."""

    def on_exception(self, exception: BaseException) -> None:
        """Called when an entry point raises."""

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO[bytes],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Build the DataModule from the hyper-parameters (and state) saved in a checkpoint."""
        from torchbolt.core.saving import load_datamodule_from_checkpoint

        return load_datamodule_from_checkpoint(
            cls, checkpoint_path, map_location=map_location, hparams_file=hparams_file, weights_only=weights_only,
            **kwargs,
        )
