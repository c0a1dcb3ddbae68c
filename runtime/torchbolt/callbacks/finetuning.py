"""BaseFinetuning and BackboneFinetuning: freeze parts of a model, then unfreeze them on a schedule."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from torch.nn import Module, ModuleDict
from torch.nn.modules.batchnorm import _BatchNorm

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

Modules = Module | Iterable[Any]


def multiplicative(epoch: int) -> float:
    """BackboneFinetuning's default `lambda_func`: double the backbone's learning rate every epoch."""
    return 2.0


class BaseFinetuning(Callback):
    """Base class for fine-tuning schedules: implement `freeze_before_training` (called in `setup`) and
    `finetune_function` (called at the start of every training epoch, once per optimizer).

    The parameter groups added while unfreezing are saved in checkpoints by parameter name, so a resumed
    run rebuilds the same optimizer groups.
    """

    def __init__(self) -> None:
        self._internal_optimizer_metadata: dict[int, list[dict[str, Any]]] = {}
        self._restarting = False

    def state_dict(self) -> dict[str, Any]:
        return {"internal_optimizer_metadata": self._internal_optimizer_metadata}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restarting = True
        self._internal_optimizer_metadata = state_dict.get("internal_optimizer_metadata", state_dict)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._restarting:
            return
        if self._internal_optimizer_metadata:
            by_name = dict(pl_module.named_parameters())
            for idx, optimizer in enumerate(trainer.optimizers):
                groups = self._internal_optimizer_metadata.get(idx)
                if groups is not None:
                    optimizer.param_groups = self._apply_mapping_to_param_groups(groups, by_name)
        self._restarting = False

    # ---- helpers users call from their schedules ------------------------------------------------
    @staticmethod
    def flatten_modules(modules: Modules) -> list[Module]:
        """The leaf modules (and modules holding their own parameters) of a module or nested iterable."""
        if isinstance(modules, ModuleDict):
            modules = modules.values()
        if isinstance(modules, Iterable):
            found: list[Module] = []
            for m in modules:
                found.extend(BaseFinetuning.flatten_modules(m))
            candidates: Iterable[Module] = found
        else:
            candidates = modules.modules()
        return [m for m in candidates if not list(m.children()) or m._parameters]

    @staticmethod
    def filter_params(modules: Modules, train_bn: bool = True, requires_grad: bool = True) -> Generator[Any, None, None]:
        """Parameters of `modules` whose requires_grad equals `requires_grad` (batch norm skipped unless
        `train_bn`)."""
        for mod in BaseFinetuning.flatten_modules(modules):
            if isinstance(mod, _BatchNorm) and not train_bn:
                continue
            for param in mod.parameters(recurse=False):
                if param.requires_grad == requires_grad:
                    yield param

    @staticmethod
    def make_trainable(modules: Modules) -> None:
        """Unfreeze every parameter of `modules`."""
        for module in BaseFinetuning.flatten_modules(modules):
            if isinstance(module, _BatchNorm):
                module.track_running_stats = True
            for param in module.parameters(recurse=False):
                param.requires_grad = True

    @staticmethod
    def freeze_module(module: Module) -> None:
        """Freeze one module's own parameters (and stop a batch norm tracking statistics)."""
        if isinstance(module, _BatchNorm):
            module.track_running_stats = False
        for param in module.parameters(recurse=False):
            param.requires_grad = False

    @staticmethod
    def freeze(modules: Modules, train_bn: bool = True) -> None:
        """Freeze `modules`; batch-norm layers stay trainable when `train_bn`."""
        for mod in BaseFinetuning.flatten_modules(modules):
            if isinstance(mod, _BatchNorm) and train_bn:
                BaseFinetuning.make_trainable(mod)
            else:
                BaseFinetuning.freeze_module(mod)

    @staticmethod
    def filter_on_optimizer(optimizer: Optimizer, params: Iterable[Any]) -> list[Any]:
        """`params` minus those the optimizer already holds (warns when some were dropped)."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        kept, dropped = [], []
        for param in params:
            (dropped if id(param) in held else kept).append(param)
        if dropped:
            warnings.warn(
                "The provided params to be frozen already exist within another group of this optimizer. Those "
                "parameters will be skipped.\nHINT: Did you init your optimizer in `configure_optimizer` as such:\n"
                f" {type(optimizer)}(filter(lambda p: p.requires_grad, self.parameters()), ...) ",
                stacklevel=2,
            )
        return kept

    @staticmethod
    def unfreeze_and_add_param_group(modules: Modules, optimizer: Optimizer, lr: float | None = None,
                                     initial_denom_lr: float = 10.0, train_bn: bool = True) -> None:
        """Unfreeze `modules` and add their parameters to `optimizer` as a new group.

        The group's lr is `lr`, or the first group's lr divided by `initial_denom_lr` when `lr` is None.
        """
        BaseFinetuning.make_trainable(modules)
        group_lr = optimizer.param_groups[0]["lr"] if lr is None else float(lr)
        denom = initial_denom_lr if lr is None else 1.0
        params = BaseFinetuning.filter_params(modules, train_bn=train_bn, requires_grad=True)
        new = BaseFinetuning.filter_on_optimizer(optimizer, params)
        if new:
            optimizer.add_param_group({"params": new, "lr": group_lr / denom})

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.freeze_before_training(pl_module)

    @staticmethod
    def _apply_mapping_to_param_groups(param_groups: list[dict[str, Any]], mapping: dict[Any, Any]) -> list[dict[str, Any]]:
        out = []
        for group in param_groups:
            state = {k: v for k, v in group.items() if k != "params"}
            state["params"] = [mapping[p] for p in group["params"]]
            out.append(state)
        return out

    def _store(self, pl_module: LightningModule, opt_idx: int, num_param_groups: int,
               current_param_groups: list[dict[str, Any]]) -> None:
        names = {p: n for n, p in pl_module.named_parameters()}
        if opt_idx not in self._internal_optimizer_metadata:
            self._internal_optimizer_metadata[opt_idx] = self._apply_mapping_to_param_groups(current_param_groups, names)
        elif num_param_groups != len(current_param_groups):
            self._internal_optimizer_metadata[opt_idx].extend(
                self._apply_mapping_to_param_groups(current_param_groups[num_param_groups:], names)
            )

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for opt_idx, optimizer in enumerate(trainer.optimizers):
            before = len(optimizer.param_groups)
            self.finetune_function(pl_module, trainer.current_epoch, optimizer)
            self._store(pl_module, opt_idx, before, optimizer.param_groups)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        """Unfreeze what this epoch should train (override)."""
        raise NotImplementedError

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        """Freeze what must not train at first (override)."""
        raise NotImplementedError


class BackboneFinetuning(BaseFinetuning):
    """Freezes `pl_module.backbone` and unfreezes it at `unfreeze_backbone_at_epoch` with a small lr that then
    grows by `lambda_func(epoch + 1)` each epoch (capped at the main lr when `should_align`)."""

    def __init__(
        self,
        unfreeze_backbone_at_epoch: int = 10,
        lambda_func: Callable[[int], float] = multiplicative,
        backbone_initial_ratio_lr: float = 0.1,
        backbone_initial_lr: float | None = None,
        should_align: bool = True,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
        verbose: bool = False,
        rounding: int = 12,
    ) -> None:
        super().__init__()
        self.unfreeze_backbone_at_epoch = unfreeze_backbone_at_epoch
        self.lambda_func = lambda_func
        self.backbone_initial_ratio_lr = backbone_initial_ratio_lr
        self.backbone_initial_lr = backbone_initial_lr
        self.should_align = should_align
        self.initial_denom_lr = initial_denom_lr
        self.train_bn = train_bn
        self.verbose = verbose
        self.rounding = rounding
        self.previous_backbone_lr: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"internal_optimizer_metadata": self._internal_optimizer_metadata,
                "previous_backbone_lr": self.previous_backbone_lr}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous_backbone_lr = state_dict["previous_backbone_lr"]
        super().load_state_dict(state_dict)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not isinstance(getattr(pl_module, "backbone", None), Module):
            raise MisconfigurationException(
                "The LightningModule should have a nn.Module `backbone` attribute (BackboneFinetuning freezes and "
                "later unfreezes it)."
            )
        super().on_fit_start(trainer, pl_module)

    def freeze_before_training(self, pl_module: LightningModule) -> None:
        backbone = getattr(pl_module, "backbone", None)
        if not isinstance(backbone, Module):
            raise MisconfigurationException(
                "The LightningModule should have a nn.Module `backbone` attribute (BackboneFinetuning freezes and "
                "later unfreezes it)."
            )
        self.freeze(backbone)

    def finetune_function(self, pl_module: LightningModule, epoch: int, optimizer: Optimizer) -> None:
        if epoch == self.unfreeze_backbone_at_epoch:
            current_lr = optimizer.param_groups[0]["lr"]
            initial = (self.backbone_initial_lr if self.backbone_initial_lr is not None
                       else current_lr * self.backbone_initial_ratio_lr)
            self.previous_backbone_lr = initial
            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, initial, train_bn=self.train_bn,
                                              initial_denom_lr=self.initial_denom_lr)
            if self.verbose:
                log.info("Current lr: %s, Backbone lr: %s", round(current_lr, self.rounding),
                         round(initial, self.rounding))
        elif epoch > self.unfreeze_backbone_at_epoch:
            assert self.previous_backbone_lr is not None
            current_lr = optimizer.param_groups[0]["lr"]
            nxt = self.lambda_func(epoch + 1) * self.previous_backbone_lr
            if self.should_align and nxt > current_lr:
                nxt = current_lr
            optimizer.param_groups[-1]["lr"] = nxt
            self.previous_backbone_lr = nxt
            if self.verbose:
                log.info("Current lr: %s, Backbone lr: %s", round(current_lr, self.rounding), round(nxt, self.rounding))


