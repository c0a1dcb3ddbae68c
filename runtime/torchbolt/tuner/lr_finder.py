"""The learning-rate range test: train with a learning rate growing from `min_lr` to `max_lr` and
suggest the rate where the (smoothed) loss falls fastest."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.optim.lr_scheduler import LRScheduler

from torchbolt.callbacks.callback import Callback
from torchbolt.tuner.attributes import lightning_setattr, lr_attr_name
from torchbolt.tuner.trial import restoring, run_fit_steps
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

#: Environment variable naming a JSON file that receives the lr_find result ({"suggested_lr", "lr", "loss"}),
#: for the editor's "Find LR" lens.
SUMMARY_ENV = "TORCHBOLT_LR_FIND_SUMMARY"


class _RangeLR(LRScheduler):
    """Moves every group's lr from its base value towards `end_lr` over `num_iter` steps, linearly or
    exponentially (the first step keeps the base value)."""

    def __init__(self, optimizer: torch.optim.Optimizer, end_lr: float, num_iter: int, exponential: bool) -> None:
        self.end_lr = end_lr
        self.num_iter = num_iter
        self.exponential = exponential
        self._lr: list[float] = []
        super().__init__(optimizer, -1)

    def get_lr(self) -> list[float]:
        r = (self.last_epoch + 1) / self.num_iter
        if self.last_epoch > 0:
            if self.exponential:
                lrs = [base * (self.end_lr / base) ** r for base in self.base_lrs]
            else:
                lrs = [base + r * (self.end_lr - base) for base in self.base_lrs]
        else:
            lrs = list(self.base_lrs)
        self._lr = lrs
        return lrs

    @property
    def lr(self) -> list[float]:
        return self._lr


class _LRFinder:
    """The result of `lr_find`: `results` {"lr": [...], "loss": [...]}, `suggestion()` and `plot()`."""

    def __init__(self, mode: str, lr_min: float, lr_max: float, num_training: int) -> None:
        if mode not in ("linear", "exponential"):
            raise MisconfigurationException(f"lr_find(mode={mode!r}) must be 'linear' or 'exponential'.")
        self.mode = mode
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.num_training = num_training
        self.results: dict[str, Any] = {}
        self._optimal_idx: int | None = None

    def suggestion(self, skip_begin: int = 10, skip_end: int = 1) -> float | None:
        """The lr at the steepest descent of the loss curve (ignoring the first `skip_begin` and last
        `skip_end` points and non-finite losses); None when fewer than two points remain."""
        losses = torch.tensor(self.results["loss"][skip_begin:-skip_end])
        lrs = torch.tensor(self.results["lr"][skip_begin:-skip_end])
        finite = torch.isfinite(losses)
        losses, lrs = losses[finite], lrs[finite]
        if len(losses) < 2:
            log.error("Failed to compute suggestion for learning rate because there are not enough points. Increase "
                      "the loop iteration limits or the size of your dataset/dataloader.")
            self._optimal_idx = None
            return None
        gradients = torch.gradient(losses, spacing=[lrs])[0]
        steepest = int(torch.argmin(gradients).item())
        kept = torch.arange(len(self.results["loss"]))[skip_begin:-skip_end][finite]
        self._optimal_idx = int(kept[steepest].item())
        return float(self.results["lr"][self._optimal_idx])

    def plot(self, suggest: bool = False, show: bool = False, ax: Any = None) -> Any:
        """The loss against the lr (log scale in exponential mode), with the suggestion marked when `suggest`.

        Needs matplotlib."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise MisconfigurationException(
                "To use the `plot` method, you must have Matplotlib installed. Install it by running "
                "`pip install -U matplotlib`."
            ) from None
        lrs, losses = self.results["lr"], self.results["loss"]
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        ax.plot(lrs, losses)
        if self.mode == "exponential":
            ax.set_xscale("log")
        ax.set_xlabel("Learning rate")
        ax.set_ylabel("Loss")
        if suggest and self.suggestion() is not None and self._optimal_idx is not None:
            ax.plot(lrs[self._optimal_idx], losses[self._optimal_idx], markersize=10, marker="o", color="red")
        if show:
            plt.show()
        return fig

    def write_summary(self, path: str | os.PathLike[str]) -> None:
        """Write {"suggested_lr", "mode", "lr", "loss"} as JSON (for tools such as the editor)."""
        data = {"suggested_lr": self.suggestion(), "mode": self.mode,
                "lr": [float(x) for x in self.results.get("lr", [])],
                "loss": [float(x) for x in self.results.get("loss", [])]}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data), encoding="utf-8")


class _LRRecorder(Callback):
    """Records the lr and the smoothed loss of each optimizer step; stops when the loss diverges."""

    def __init__(self, num_training: int, early_stop_threshold: float | None, beta: float = 0.98) -> None:
        self.num_training = num_training
        self.early_stop_threshold = early_stop_threshold
        self.beta = beta
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.avg_loss = 0.0
        self.best_loss = 0.0

    def _stepping(self, trainer: Trainer) -> bool:
        return (trainer.fit_loop.epoch_loop.batch_idx + 1) % trainer.accumulate_grad_batches == 0

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._stepping(trainer):
            self.lrs.append(trainer.lr_scheduler_configs[0].scheduler.lr[0])

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self._stepping(trainer):
            return
        if not outputs:
            self.losses.append(float("nan"))
            return
        loss = outputs if isinstance(outputs, torch.Tensor) else outputs["loss"]
        step = trainer.global_step
        # bias-corrected exponential moving average of the loss
        self.avg_loss = self.beta * self.avg_loss + (1 - self.beta) * float(loss.item())
        smoothed = self.avg_loss / (1 - self.beta ** (step + 1))
        if self.early_stop_threshold is not None and step > 1 and smoothed > self.early_stop_threshold * self.best_loss:
            trainer.should_stop = True
        if smoothed < self.best_loss or step == 1:
            self.best_loss = smoothed
        self.losses.append(smoothed)


def lr_find(trainer: Trainer, model: LightningModule, min_lr: float = 1e-8, max_lr: float = 1.0,
            num_training: int = 100, mode: str = "exponential", early_stop_threshold: float | None = 4.0,
            update_attr: bool = False, attr_name: str = "") -> _LRFinder | None:
    """Run the range test inside a fit whose optimizers exist (from `LearningRateFinder.on_fit_start`);
    the model and the Trainer are put back afterwards, then the suggestion is applied when `update_attr`."""
    if trainer.fast_dev_run:
        log.warning("Skipping learning rate finder since `fast_dev_run` is enabled.")
        return None
    if update_attr:
        attr_name = lr_attr_name(model, attr_name)
    if len(trainer.optimizers) != 1:
        raise MisconfigurationException(
            f"`model.configure_optimizers()` returned {len(trainer.optimizers)}, but learning rate finder only works "
            "with single optimizer"
        )
    finder = _LRFinder(mode, min_lr, max_lr, num_training)
    recorder = _LRRecorder(num_training, early_stop_threshold)
    bar = trainer.progress_bar_callback
    if bar is not None:
        bar.disable()
    start = trainer.global_step
    from torchbolt.core.optimizer import LRSchedulerConfig

    with restoring(trainer):
        optimizer = trainer.optimizers[0]
        for group in optimizer.param_groups:
            group["lr"] = min_lr
            group["initial_lr"] = min_lr
        scheduler = _RangeLR(optimizer, max_lr, num_training, exponential=mode == "exponential")
        trainer.lr_scheduler_configs[:] = [LRSchedulerConfig(scheduler, interval="step")]
        run_fit_steps(trainer, num_training, [recorder], limit_val_batches=num_training)
        if trainer.global_step != num_training + start:
            log.info("LR finder stopped early after %d steps due to diverging loss.", trainer.global_step - start)
        finder.results = {"lr": recorder.lrs, "loss": recorder.losses}
    if bar is not None:
        bar.enable()
    target = os.environ.get(SUMMARY_ENV)
    if target:
        finder.write_summary(target)
    if update_attr:
        lr = finder.suggestion()
        if lr is not None:
            lightning_setattr(model, attr_name, lr)
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group["lr"] = lr
            log.info("Learning rate set to %s", lr)
    return finder
