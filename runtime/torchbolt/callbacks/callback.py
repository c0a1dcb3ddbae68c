"""The Callback base class: every hook of Lightning 2.x's Callback, each a no-op by default."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor
    from torch.optim import Optimizer

    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

STEP_OUTPUT = Any


class Callback:
    """Base class for callbacks: override the hooks you need. See `torchbolt.catalog.CALLBACK_HOOKS`."""

    @property
    def state_key(self) -> str:
        """Key of this callback's state in a checkpoint; override when several instances may coexist."""
        return self.__class__.__qualname__

    @property
    def _legacy_state_key(self) -> str | None:
        """An older key this callback's state may be stored under in checkpoints (None: only `state_key`)."""
        return None

    def _generate_state_key(self, **kwargs: Any) -> str:
        """A state key made of the class name and the given arguments (as Lightning formats it)."""
        return f"{self.__class__.__qualname__}{repr(kwargs)}"

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Very beginning of fit, after setup, configure_model and configure_optimizers, before the sanity check."""
        return None

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Very end of fit, after on_train_end and before teardown."""
        return None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After the sanity check, before the first training epoch."""
        return None

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After the last training epoch, before loggers are finalized."""
        return None

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Beginning of each validation run."""
        return None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of each validation run."""
        return None

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Beginning of testing."""
        return None

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of testing."""
        return None

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Beginning of predicting."""
        return None

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of predicting."""
        return None

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start of each training epoch."""
        return None

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of each training epoch, after the in-epoch validation."""
        return None

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start of each validation epoch."""
        return None

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of each validation epoch (after all validation batches)."""
        return None

    def on_test_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start of the test epoch."""
        return None

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of the test epoch."""
        return None

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start of the predict epoch."""
        return None

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End of the predict epoch (2.x passes no outputs; read trainer.predict_loop.predictions)."""
        return None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Before training_step, after the batch was moved to the device. Return -1 to skip the rest of the epoch."""
        return None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: STEP_OUTPUT, batch: Any, batch_idx: int
    ) -> None:
        """After the optimizer step of a training batch; outputs['loss'] is divided by accumulate_grad_batches."""
        return None

    def on_validation_batch_start(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Before validation_step."""
        return None

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: STEP_OUTPUT,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """After validation_step."""
        return None

    def on_test_batch_start(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Before test_step."""
        return None

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: STEP_OUTPUT,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """After test_step."""
        return None

    def on_predict_batch_start(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Before predict_step."""
        return None

    def on_predict_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """After predict_step."""
        return None

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule, loss: Tensor) -> None:
        """Before backward; the loss is already divided for gradient accumulation."""
        return None

    def on_after_backward(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After backward, before the optimizer step."""
        return None

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        """Before optimizer.step(), after accumulation and before gradient clipping; a good place to log gradient norms."""
        return None

    def on_before_zero_grad(self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer) -> None:
        """After training_step and before optimizer_zero_grad (automatic optimization)."""
        return None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Runs on every process at the start of each entry point, with stage in 'fit'|'validate'|'test'|'predict'; self.device is already the target device."""
        return None

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Runs at the end of every entry point."""
        return None

    def on_save_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Last step of writing a checkpoint; may add keys to the dict."""
        return None

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """While restoring from a checkpoint (ckpt_path= or load_from_checkpoint), before configure_optimizers."""
        return None

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Before the sanity-check validation run in fit."""
        return None

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After the sanity-check validation run in fit."""
        return None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """When any entry point raises (including KeyboardInterrupt)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """The callback's state, saved in checkpoints under its state_key."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores the callback's state from a checkpoint."""
        return None
