"""StochasticWeightAveraging: average the weights of the last epochs of training (Izmailov et al., 2018)."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from copy import deepcopy
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import SWALR

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

_AVG_FN = Callable[[Tensor, Tensor, Tensor], Tensor]


class StochasticWeightAveraging(Callback):
    """Keeps a running average of the weights from `swa_epoch_start` on, with an SWALR learning-rate
    schedule, and copies the average into the module when training ends.

    `swa_epoch_start` is an epoch number (>= 1) or a fraction of `max_epochs`. With batch-norm layers, the
    running statistics are recomputed for the averaged weights by one extra training epoch (counted in
    `max_epochs` while fitting, as in Lightning): `training_step` on every batch with a cumulative average
    in the batch-norm layers and no zero_grad or backward; only its last batch steps the optimizer, with
    whatever gradients are left (none after a validation run, which zeroes them).
    """

    def __init__(
        self,
        swa_lrs: float | list[float],
        swa_epoch_start: int | float = 0.8,
        annealing_epochs: int = 10,
        annealing_strategy: Literal["cos", "linear"] = "cos",
        avg_fn: _AVG_FN | None = None,
        device: torch.device | str | None = torch.device("cpu"),  # noqa: B008 - Lightning's default
    ) -> None:
        bad_start = "swa_epoch_start should be a >0 integer or a float between 0 and 1."
        if isinstance(swa_epoch_start, bool) or not isinstance(swa_epoch_start, (int, float)):
            raise MisconfigurationException(f"{bad_start} Got {swa_epoch_start!r}.")
        if isinstance(swa_epoch_start, int) and swa_epoch_start < 1:
            raise MisconfigurationException(f"{bad_start} Got {swa_epoch_start!r}.")
        if isinstance(swa_epoch_start, float) and not 0 <= swa_epoch_start <= 1:
            raise MisconfigurationException(f"{bad_start} Got {swa_epoch_start!r}.")
        ok_float = isinstance(swa_lrs, float) and swa_lrs > 0
        ok_list = isinstance(swa_lrs, list) and all(isinstance(lr, float) and lr > 0 for lr in swa_lrs)
        if not (ok_float or ok_list):
            raise MisconfigurationException(
                f"The `swa_lrs` should a positive float, or a list of positive floats; got {swa_lrs!r}."
            )
        if avg_fn is not None and not callable(avg_fn):
            raise MisconfigurationException("The `avg_fn` should be callable.")
        if device is not None and not isinstance(device, (torch.device, str)):
            raise MisconfigurationException(f"device is expected to be a torch.device or a str. Found {device}")
        if annealing_strategy not in ("cos", "linear"):
            raise MisconfigurationException(
                f"annealing_strategy should be 'cos' or 'linear', got {annealing_strategy!r}."
            )
        self.n_averaged: Tensor | None = None
        self._swa_epoch_start = swa_epoch_start
        self._swa_lrs = swa_lrs
        self._annealing_epochs = annealing_epochs
        self._annealing_strategy = annealing_strategy
        self._avg_fn = avg_fn or self.avg_fn
        self._device = device
        self._model_contains_batch_norm: bool | None = None
        self._average_model: LightningModule | None = None
        self._initialized = False
        self._swa_scheduler: Any = None
        self._scheduler_state: dict[str, Any] | None = None
        self._init_n_averaged = 0
        self._latest_update_epoch = -1
        self._max_epochs = -1
        self._pending_average_state: dict[str, Any] | None = None
        #: batch-norm layer -> its momentum, saved while the extra epoch averages cumulatively
        self.momenta: dict[nn.Module, Any] = {}
        self._accumulate_grad_batches = 1

    @property
    def swa_start(self) -> int:
        """First epoch (0-based) whose starting weights enter the average."""
        assert isinstance(self._swa_epoch_start, int)
        return max(self._swa_epoch_start - 1, 0)

    @property
    def swa_end(self) -> int | float:
        """Last epoch (0-based) that is averaged."""
        return float("inf") if self._max_epochs == -1 else self._max_epochs - 1

    @staticmethod
    def pl_module_contains_batch_norm(pl_module: nn.Module) -> bool:
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in pl_module.modules())

    @staticmethod
    def avg_fn(averaged_model_parameter: Tensor, model_parameter: Tensor, num_averaged: Tensor) -> Tensor:
        """The equal-weight running mean: avg + (new - avg) / (n + 1)."""
        return averaged_model_parameter + (model_parameter - averaged_model_parameter) / (num_averaged + 1)

    @staticmethod
    def update_parameters(average_model: nn.Module, model: nn.Module, n_averaged: Tensor, avg_fn: _AVG_FN) -> None:
        """Fold `model`'s parameters into `average_model` and count one more average."""
        for p_avg, p_model in zip(average_model.parameters(), model.parameters(), strict=True):
            target = p_avg.detach()
            source = p_model.detach().to(target.device)
            target.copy_(source if n_averaged == 0 else avg_fn(target, source, n_averaged.to(target.device)))
        n_averaged += 1

    @staticmethod
    def transfer_weights(src_pl_module: nn.Module, dst_pl_module: nn.Module) -> None:
        for src, dst in zip(src_pl_module.parameters(), dst_pl_module.parameters(), strict=True):
            dst.detach().copy_(src.to(dst.device))

    # ---- hooks ------------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._average_model = deepcopy(pl_module)
        if self._pending_average_state is not None:
            self._average_model.load_state_dict(self._pending_average_state)
            self._pending_average_state = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise MisconfigurationException("SWA currently works with 1 `optimizer`.")
        if len(trainer.lr_scheduler_configs) > 1:
            raise MisconfigurationException("SWA currently not supported for more than 1 `lr_scheduler`.")
        if isinstance(self._swa_epoch_start, float):
            if trainer.max_epochs == -1:
                raise MisconfigurationException(
                    "SWA with `swa_epoch_start` as a float is not supported when `max_epochs=-1`. Please provide "
                    "`swa_epoch_start` as an integer."
                )
            self._swa_epoch_start = int(trainer.max_epochs * self._swa_epoch_start)
        self._model_contains_batch_norm = self.pl_module_contains_batch_norm(pl_module)
        self._max_epochs = trainer.max_epochs
        if self._model_contains_batch_norm and trainer.max_epochs != -1:
            trainer.max_epochs += 1  # the batch-norm epoch; given back in on_train_end
        if self._scheduler_state is not None and trainer.lr_scheduler_configs:
            # resuming inside the SWA phase: the SWALR scheduler replaces the configured one again below
            trainer.lr_scheduler_configs.clear()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        in_swa = self.swa_start <= epoch <= self.swa_end
        if not self._initialized and in_swa:
            self._initialized = True
            self._start_swa(trainer, pl_module)
        if in_swa and epoch > self._latest_update_epoch:
            assert self.n_averaged is not None and self._average_model is not None
            self.update_parameters(self._average_model, pl_module, self.n_averaged, self._avg_fn)
            self._latest_update_epoch = epoch
        if self._max_epochs != -1 and epoch == self.swa_end + 1:
            self._start_batch_norm_epoch(trainer, pl_module)

    def _start_batch_norm_epoch(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The epoch after the last averaged one: put the average in the module and let the epoch's forward
        passes rebuild the batch-norm statistics (no backward; the optimizer steps on the last batch only)."""
        assert self._average_model is not None
        self.transfer_weights(self._average_model, pl_module)
        self.reset_batch_norm_and_save_state(pl_module)
        loop = trainer._loops.fit
        loop.skip_backward = True
        self._accumulate_grad_batches = trainer.accumulate_grad_batches
        batches = trainer.num_training_batches
        # more than the epoch has, so that only its last batch steps (a stream without a length ends on
        # its last batch too)
        trainer.accumulate_grad_batches = int(batches) + 1 if batches != float("inf") else sys.maxsize

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trainer._loops.fit.skip_backward = False

    def _start_swa(self, trainer: Trainer, pl_module: LightningModule) -> None:
        from torchbolt.core.optimizer import LRSchedulerConfig

        assert self._average_model is not None
        self._average_model = self._average_model.to(self._device or pl_module.device)
        optimizer = trainer.optimizers[0]
        if isinstance(self._swa_lrs, float):
            self._swa_lrs = [self._swa_lrs] * len(optimizer.param_groups)
        for lr, group in zip(self._swa_lrs, optimizer.param_groups, strict=False):
            group["initial_lr"] = lr
        # with batch norm, max_epochs already counts the extra epoch (as Lightning's does here)
        max_epochs = trainer.max_epochs
        self._swa_scheduler = SWALR(
            optimizer, swa_lr=self._swa_lrs, anneal_epochs=self._annealing_epochs,
            anneal_strategy=self._annealing_strategy,
            last_epoch=max_epochs if self._annealing_strategy == "cos" else -1,
        )
        if self._scheduler_state is not None:
            self._swa_scheduler.load_state_dict(self._scheduler_state)
        elif trainer.current_epoch != self.swa_start:
            warnings.warn(
                "SWA is initializing after swa_start without any checkpoint data; the average restarts here.",
                stacklevel=2,
            )
        config = LRSchedulerConfig(self._swa_scheduler)
        if trainer.lr_scheduler_configs:
            current = trainer.lr_scheduler_configs[0]
            if current.interval != "epoch" or current.frequency != 1:
                warnings.warn(f"SWA is currently only supported every epoch. Found {current}", stacklevel=2)
            log.info("Swapping scheduler `%s` for `%s`", type(current.scheduler).__name__,
                     type(self._swa_scheduler).__name__)
            trainer.lr_scheduler_configs[0] = config
        else:
            trainer.lr_scheduler_configs.append(config)
        if self.n_averaged is None:
            self.n_averaged = torch.tensor(self._init_n_averaged, dtype=torch.long, device=pl_module.device)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # current_epoch has moved past the last epoch run by now
        last = trainer.current_epoch - 1
        bn_epoch = self._model_contains_batch_norm and self._max_epochs != -1
        if bn_epoch:
            trainer.max_epochs -= 1  # back to the user's value, even after an early stop
        if bn_epoch and last == self.swa_end + 1:
            # the batch-norm epoch ran: the module holds the average with fresh statistics
            trainer.accumulate_grad_batches = self._accumulate_grad_batches
            self.reset_momenta()
        elif last == self.swa_end or self._max_epochs == -1:
            # the last averaged epoch (no batch norm) or an open-ended run: the module takes the average
            if self._average_model is not None and self._initialized:
                self.transfer_weights(self._average_model, pl_module)
        # stopped before the last SWA epoch: the trained weights stay, as in Lightning

    def reset_batch_norm_and_save_state(self, pl_module: nn.Module) -> None:
        """Fresh statistics (mean 0, variance 1, no batches counted) and a cumulative average in every
        batch-norm layer; the momenta are kept in `self.momenta` for `reset_momenta`."""
        self.momenta = {}
        for module in pl_module.modules():
            if not isinstance(module, nn.modules.batchnorm._BatchNorm) or module.running_mean is None:
                continue
            module.running_mean = torch.zeros_like(module.running_mean)
            module.running_var = torch.ones_like(module.running_var)  # type: ignore[arg-type]
            self.momenta[module] = module.momentum
            module.momentum = None  # None: a cumulative moving average over the epoch's batches
            if module.num_batches_tracked is not None:
                module.num_batches_tracked.zero_()

    def reset_momenta(self) -> None:
        """Give every batch-norm layer back the momentum saved by `reset_batch_norm_and_save_state`."""
        for module, momentum in self.momenta.items():
            module.momentum = momentum

    # ---- checkpoint state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "n_averaged": 0 if self.n_averaged is None else self.n_averaged.item(),
            "latest_update_epoch": self._latest_update_epoch,
            "scheduler_state": None if self._swa_scheduler is None else self._swa_scheduler.state_dict(),
            "average_model_state": None if self._average_model is None else self._average_model.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._init_n_averaged = state_dict["n_averaged"]
        self._latest_update_epoch = state_dict["latest_update_epoch"]
        self._scheduler_state = state_dict["scheduler_state"]
        average = state_dict.get("average_model_state")
        if average is None:
            return
        if self._average_model is not None:
            self._average_model.load_state_dict(average)
        else:
            self._pending_average_state = average
