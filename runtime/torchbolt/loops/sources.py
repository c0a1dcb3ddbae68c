"""Where each loop's batches come from: the call's dataloaders, else the DataModule's, else the module's.

Requested when a loop needs them (and again when `reload_dataloaders_every_n_epochs` says so), wrapped,
seeded and counted after the Trainer's `limit_*_batches`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from torchbolt.loops._common import INF
from torchbolt.trainer.data import (
    as_train_loader,
    check_iterable,
    flatten_loaders,
    install_worker_seeding,
    loader_length,
    parse_num_batches,
    without_shuffle,
)
from torchbolt.trainer.dispatch import is_overridden
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.loops.context import Loops

_EVAL_HOOK = {"validate": "val_dataloader", "test": "test_dataloader", "predict": "predict_dataloader"}


class DataSources:
    """The dataloaders of one Trainer and their batch counts."""

    def __init__(self, loops: Loops) -> None:
        self._loops = loops
        self.train_source: Any = None  # what train_dataloader returned (or fit's argument)
        self.train_loader: Any = None
        self.num_training_batches: int | float = INF
        self.val_loaders: list[Any] | None = None
        self.val_source: Any = None
        self.num_val_batches: list[int | float] = []
        self.eval_loaders: dict[str, list[Any]] = {}
        self.num_eval_batches: dict[str, list[int | float]] = {}
        self._last_train_reload = -1
        self._last_val_reload = -1

    def request(self, hook: str) -> Any:
        """Ask the DataModule (preferred) or the module for its `hook` dataloaders."""
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        loops = self._loops
        hooks = loops.hooks
        if is_overridden(loops.trainer.datamodule, hook, LightningDataModule):
            return hooks.call_datamodule(hook)
        if is_overridden(loops.module, hook, LightningModule):
            return hooks.call_module(hook)
        return None

    def defined(self, hook: str) -> bool:
        """Whether a dataloader source exists for `hook` (argument, DataModule or module override)."""
        from torchbolt.core.datamodule import LightningDataModule
        from torchbolt.core.module import LightningModule

        loops = self._loops
        request = loops.request
        if request is not None and request.loader_source(hook) is not None:
            return True
        if is_overridden(loops.trainer.datamodule, hook, LightningDataModule):
            return True
        return is_overridden(loops.module, hook, LightningModule)

    def _given(self, hook: str) -> Any:
        request = self._loops.request
        return None if request is None else request.loader_source(hook)

    # -- fit ---------------------------------------------------------------------------------------
    def setup_train(self) -> None:
        """Request the training dataloader (at the start, or again when a reload is due), count its batches
        and work out when validation runs (`val_check_batch`)."""
        loops = self._loops
        trainer = loops.trainer
        state = loops.state
        epoch = trainer.current_epoch
        every = trainer.reload_dataloaders_every_n_epochs
        if self.train_loader is not None and not (every and epoch - self._last_train_reload >= every):
            return
        source = self._given("train_dataloader")
        if source is None:
            source = self.request("train_dataloader")
            if source is None:
                raise MisconfigurationException(
                    "No training data: define train_dataloader() on the LightningModule or DataModule, or pass "
                    "train_dataloaders= to trainer.fit()."
                )
        self.train_source = source
        loader = as_train_loader(source)
        if trainer.overfit_batches > 0:
            loader = without_shuffle(loader, "train")
        install_worker_seeding(loader)
        self.train_loader = loader
        self._last_train_reload = epoch
        length = loader_length(loader)
        limit = trainer.overfit_batches if trainer.overfit_batches > 0 else trainer.limit_train_batches
        self.num_training_batches = parse_num_batches("train", length, limit)
        if self.num_training_batches == 0:
            return
        interval = trainer.val_check_interval
        if loops.val_check_seconds is not None:
            # time-based validation (Lightning 2.6): no batch schedule; the clock starts with training
            state.val_check_batch = None
            state.last_val_time = time.monotonic()
        elif isinstance(interval, int):
            state.val_check_batch = interval
            if interval > self.num_training_batches and trainer.check_val_every_n_epoch is not None:
                raise ValueError(
                    f"`val_check_interval` ({interval}) must be less than or equal to the number of the training "
                    f"batches ({self.num_training_batches}). If you want to disable validation set "
                    "`limit_val_batches` to 0.0 instead. If you want to validate based on the total training "
                    "batches, set `check_val_every_n_epoch=None`."
                )
        elif self.num_training_batches == INF:
            if interval != 1.0:
                raise MisconfigurationException(
                    "When using an IterableDataset without a length for `train_dataloader`, `Trainer(val_check_interval)` "
                    "must be `1.0` or an int: an int checks validation every that many training batches."
                )
            state.val_check_batch = INF
        else:
            state.val_check_batch = max(1, int(self.num_training_batches * interval))
        loops.fit.forget_iterator()

    def setup_val(self) -> None:
        """Request the validation dataloaders for fit (once, or when a reload is due)."""
        trainer = self._loops.trainer
        every = trainer.reload_dataloaders_every_n_epochs
        epoch = trainer.current_epoch
        if self.val_loaders is not None and not (every and epoch - self._last_val_reload >= every):
            return
        source = self._given("val_dataloader")
        if source is None:
            source = self.request("val_dataloader")
        loaders, _ = flatten_loaders(source)
        for dl in loaders:
            check_iterable(dl, "val")
        if trainer.overfit_batches > 0:
            loaders = [without_shuffle(dl, "val") for dl in loaders]
        for dl in loaders:
            install_worker_seeding(dl)
        self.val_source = source
        self.val_loaders = loaders
        self._last_val_reload = epoch
        limit = trainer.overfit_batches if trainer.overfit_batches > 0 else trainer.limit_val_batches
        self.num_val_batches = [parse_num_batches("val", loader_length(dl), limit) for dl in loaders]

    # -- validate / test / predict -------------------------------------------------------------------
    def setup_eval(self, stage: str) -> list[Any]:
        """Dataloaders for trainer.validate / test / predict (requested on every call)."""
        trainer = self._loops.trainer
        hook = _EVAL_HOOK[stage]
        source = self._given(hook)
        if source is None:
            source = self.request(hook)
            if source is None:
                raise MisconfigurationException(
                    f"No {hook.split('_')[0]} data: define {hook}() on the LightningModule or DataModule, or pass "
                    f"dataloaders= to trainer.{stage}()."
                )
        loaders, _ = flatten_loaders(source)
        prefix = hook.split("_")[0]
        for dl in loaders:
            check_iterable(dl, prefix)
            install_worker_seeding(dl)
        limit = {"validate": trainer.limit_val_batches, "test": trainer.limit_test_batches,
                 "predict": trainer.limit_predict_batches}[stage]
        self.eval_loaders[stage] = loaders
        self.num_eval_batches[stage] = [parse_num_batches(prefix, loader_length(dl), limit) for dl in loaders]
        return loaders
