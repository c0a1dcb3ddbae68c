"""Default implementations of the hooks shared by LightningModule and LightningDataModule.

Each default does what Lightning 2.x's does; the loop skips hooks that a class does not override
(see `torchbolt.trainer.dispatch`), so most defaults only run when called explicitly through `super()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    import torch
    from torch import Tensor
    from torch.optim import Optimizer

STEP_OUTPUT = Any


class ModelHooks:
    """Hooks of the training lifecycle; every default is a no-op unless noted."""

    def on_fit_start(self) -> None:
        """Very beginning of fit, after setup, configure_model and configure_optimizers."""

    def on_fit_end(self) -> None:
        """Very end of fit, after on_train_end and before teardown."""

    def on_train_start(self) -> None:
        """After the sanity check, before the first training epoch."""

    def on_train_end(self) -> None:
        """After the last training epoch."""

    def on_validation_start(self) -> None:
        """Beginning of each validation run."""

    def on_validation_end(self) -> None:
        """End of each validation run."""

    def on_test_start(self) -> None:
        """Beginning of testing."""

    def on_test_end(self) -> None:
        """End of testing."""

    def on_predict_start(self) -> None:
        """Beginning of predicting."""

    def on_predict_end(self) -> None:
        """End of predicting."""

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Before training_step; return -1 to skip the rest of the epoch."""
        return None

    def on_train_batch_end(self, outputs: STEP_OUTPUT, batch: Any, batch_idx: int) -> None:
        """After the optimizer step of a training batch."""

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Before validation_step."""

    def on_validation_batch_end(
        self, outputs: STEP_OUTPUT, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """After validation_step."""

    def on_test_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Before test_step."""

    def on_test_batch_end(self, outputs: STEP_OUTPUT, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """After test_step."""

    def on_predict_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Before predict_step."""

    def on_predict_batch_end(self, outputs: Any | None, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """After predict_step."""

    def on_validation_model_zero_grad(self) -> None:
        """Before in-training validation: drop the gradients so they do not occupy memory meanwhile."""
        self.zero_grad(set_to_none=True)  # type: ignore[attr-defined]

    def on_validation_model_eval(self) -> None:
        """Start of the validation loop: switch to eval mode."""
        self.trainer.model.eval()  # type: ignore[attr-defined]

    def on_validation_model_train(self) -> None:
        """End of the validation loop (called only if overridden; otherwise modes are restored exactly)."""
        self.trainer.model.train()  # type: ignore[attr-defined]

    def on_test_model_eval(self) -> None:
        """Start of the test loop: switch to eval mode."""
        self.trainer.model.eval()  # type: ignore[attr-defined]

    def on_test_model_train(self) -> None:
        """End of the test loop (called only if overridden)."""
        self.trainer.model.train()  # type: ignore[attr-defined]

    def on_predict_model_eval(self) -> None:
        """Start of the predict loop: switch to eval mode."""
        self.trainer.model.eval()  # type: ignore[attr-defined]

    def on_train_epoch_start(self) -> None:
        """Start of each training epoch."""

    def on_train_epoch_end(self) -> None:
        """End of each training epoch, after the in-epoch validation."""

    def on_validation_epoch_start(self) -> None:
        """Start of each validation epoch."""

    def on_validation_epoch_end(self) -> None:
        """End of each validation epoch."""

    def on_test_epoch_start(self) -> None:
        """Start of the test epoch."""

    def on_test_epoch_end(self) -> None:
        """End of the test epoch."""

    def on_predict_epoch_start(self) -> None:
        """Start of the predict epoch."""

    def on_predict_epoch_end(self) -> None:
        """End of the predict epoch."""

    def on_before_zero_grad(self, optimizer: Optimizer) -> None:
        """After training_step and before optimizer_zero_grad."""

    def on_before_backward(self, loss: Tensor) -> None:
        """Before backward."""

    def on_after_backward(self) -> None:
        """After backward, before the optimizer step."""

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """Before optimizer.step(), before gradient clipping."""

    def configure_sharded_model(self) -> None:
        """Deprecated: use configure_model."""

    def configure_model(self) -> None:
        """Create layers lazily; called only if overridden, after setup. Must be idempotent."""


class DataHooks:
    """Data hooks shared by LightningModule and LightningDataModule."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepare_data_per_node: bool = True
        self.allow_zero_length_dataloader_with_multiple_devices: bool = False

    def prepare_data(self) -> None:
        """Download or prepare data once per node; called only if overridden."""

    def setup(self, stage: str) -> None:
        """Runs at the start of each entry point with stage 'fit', 'validate', 'test' or 'predict'."""

    def teardown(self, stage: str) -> None:
        """Runs at the end of each entry point."""

    def train_dataloader(self) -> Any:
        """Return the training dataloader(s)."""
        raise MisconfigurationException(
            "`train_dataloader` must be implemented to be used with the Trainer: define it on the "
            "LightningModule or DataModule, or pass train_dataloaders= to fit()."
        )

    def test_dataloader(self) -> Any:
        """Return the test dataloader(s)."""
        raise MisconfigurationException(
            "`test_dataloader` must be implemented to be used with trainer.test(): define it or pass dataloaders=."
        )

    def val_dataloader(self) -> Any:
        """Return the validation dataloader(s)."""
        raise MisconfigurationException(
            "`val_dataloader` must be implemented to be used with validation: define it or pass val_dataloaders=."
        )

    def predict_dataloader(self) -> Any:
        """Return the predict dataloader(s)."""
        raise MisconfigurationException(
            "`predict_dataloader` must be implemented to be used with trainer.predict(): define it or pass "
            "dataloaders=."
        )

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """Move the batch to `device`: tensors inside tuples, lists, dicts, namedtuples and dataclasses."""
        from torchbolt.utilities.apply_func import move_data_to_device

        return move_data_to_device(batch, device)

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Every batch, before the transfer to the device; must return the batch."""
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Every batch, after the transfer to the device; must return the batch."""
        return batch


class CheckpointHooks:
    """Checkpoint hooks of LightningModule."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """While restoring from a checkpoint, before configure_optimizers."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Last step of writing a checkpoint; may add keys to the dict."""
