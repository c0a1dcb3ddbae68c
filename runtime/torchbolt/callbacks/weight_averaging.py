"""WeightAveraging and EMAWeightAveraging: keep an averaged copy of the model (torch's AveragedModel),
validate with it, and end training with its weights."""

from __future__ import annotations

import itertools
import logging
import warnings
from copy import deepcopy
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

from torchbolt.callbacks.callback import Callback
from torchbolt.trainer.dispatch import is_overridden

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)


class WeightAveraging(Callback):
    """Averages the weights after optimizer steps (and/or epochs) chosen by `should_update`.

    The default `should_update` averages after every optimizer step with equal weights; extra keyword
    arguments (`avg_fn`, `multi_avg_fn`) go to `torch.optim.swa_utils.AveragedModel`. Validation runs with
    the averaged weights; checkpoints hold the averaged weights in `state_dict` and the current ones in
    `current_model_state`, so resuming restores both.
    """

    def __init__(self, device: torch.device | str | int | None = None, use_buffers: bool = True,
                 **kwargs: Any) -> None:
        self._device: torch.device | int | None = torch.device(device) if isinstance(device, str) else device
        self._use_buffers = use_buffers
        self._kwargs = kwargs
        self._average_model: AveragedModel | None = None
        self._latest_update_step = 0
        self._latest_update_epoch = -1

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Whether to fold the current weights in after optimizer step `step_idx` or epoch `epoch_idx`."""
        return step_idx is not None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        from torchbolt.core.module import LightningModule

        device = self._device or pl_module.device
        if is_overridden(pl_module, "configure_model", LightningModule):
            warnings.warn(
                "You're using the WeightAveraging callback with a model that overrides configure_model; the averaged "
                "copy is a full copy of the model, so a large model may run out of memory.",
                stacklevel=2,
            )
            pl_module.configure_model()
        self._average_model = AveragedModel(model=pl_module, device=device, use_buffers=self._use_buffers,
                                            **self._kwargs)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step_idx = trainer.global_step - 1
        if trainer.global_step > self._latest_update_step and self.should_update(step_idx=step_idx):
            assert self._average_model is not None
            self._average_model.update_parameters(pl_module)
            self._latest_update_step = trainer.global_step

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch > self._latest_update_epoch and self.should_update(epoch_idx=trainer.current_epoch):
            assert self._average_model is not None
            self._average_model.update_parameters(pl_module)
            self._latest_update_epoch = trainer.current_epoch

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None:
            self._copy_average_to_current(pl_module)

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None:
            self._swap_models(pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._average_model is not None:
            self._swap_models(pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"latest_update_step": self._latest_update_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._latest_update_step = state_dict["latest_update_step"]

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._average_model is None:
            log.info("WeightAveraging: checkpoint saved outside fit; the averaging state is not part of it.")
            return
        average = self._average_model.state_dict()
        checkpoint["current_model_state"] = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k[len("module."):]: v for k, v in average.items() if k.startswith("module.")}
        checkpoint["averaging_state"] = {k: v for k, v in average.items() if not k.startswith("module.")}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._average_model is None:
            warnings.warn(
                "You're using the WeightAveraging callback, but loading a checkpoint outside the 'fit' stage, so the "
                "averaging state cannot be restored (harmless for test/predict; remove the callback to silence this).",
                stacklevel=2,
            )
        elif "current_model_state" in checkpoint and "averaging_state" in checkpoint:
            state = {"module." + k: v for k, v in checkpoint["state_dict"].items()}
            state.update(checkpoint["averaging_state"])
            self._average_model.load_state_dict(state)
            # the module's weights were loaded from state_dict (the average) before this hook: restore its own
            pl_module.load_state_dict(checkpoint["current_model_state"])
        else:
            warnings.warn(
                "The checkpoint was not created with WeightAveraging; the current and the average model both start "
                "from its state_dict.",
                stacklevel=2,
            )
            self._average_model.module.load_state_dict(deepcopy(checkpoint["state_dict"]), strict=False)

    def _pairs(self, pl_module: LightningModule) -> Any:
        assert self._average_model is not None
        avg = self._average_model.module
        return zip(itertools.chain(avg.parameters(), avg.buffers()),
                   itertools.chain(pl_module.parameters(), pl_module.buffers()), strict=False)

    def _swap_models(self, pl_module: LightningModule) -> None:
        for average, current in self._pairs(pl_module):
            tmp = average.data.clone()
            average.data.copy_(current.data)
            current.data.copy_(tmp)

    def _copy_average_to_current(self, pl_module: LightningModule) -> None:
        for average, current in self._pairs(pl_module):
            current.data.copy_(average.data)


class EMAWeightAveraging(WeightAveraging):
    """An exponential moving average of the weights: `avg = decay * avg + (1 - decay) * current`, updated
    every `update_every_n_steps` optimizer steps from `update_starting_at_step`, or every epoch from
    `update_starting_at_epoch`."""

    def __init__(
        self,
        device: torch.device | str | int | None = None,
        use_buffers: bool = True,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(device=device, use_buffers=use_buffers, **kwargs, avg_fn=get_ema_avg_fn(decay=decay))
        self.update_every_n_steps = update_every_n_steps
        self.update_starting_at_step = update_starting_at_step
        self.update_starting_at_epoch = update_starting_at_epoch

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if step_idx is not None:
            started = self.update_starting_at_step is None or step_idx >= self.update_starting_at_step
            if started and self.update_every_n_steps > 0 and step_idx % self.update_every_n_steps == 0:
                return True
        if epoch_idx is not None:
            return self.update_starting_at_epoch is not None and epoch_idx >= self.update_starting_at_epoch
        return False
