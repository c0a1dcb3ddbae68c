"""ModelPruning: prune weights during training with `torch.nn.utils.prune`, optionally as lottery tickets."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from copy import deepcopy
from functools import partial
from typing import TYPE_CHECKING, Any

import torch.nn.utils.prune as torch_prune
from torch import Tensor, nn

from torchbolt.callbacks.callback import Callback
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

log = logging.getLogger(__name__)

_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "ln_structured": torch_prune.ln_structured,
    "l1_unstructured": torch_prune.l1_unstructured,
    "random_structured": torch_prune.random_structured,
    "random_unstructured": torch_prune.random_unstructured,
}
_METHODS: dict[str, type[torch_prune.BasePruningMethod]] = {
    "ln_structured": torch_prune.LnStructured,
    "l1_unstructured": torch_prune.L1Unstructured,
    "random_structured": torch_prune.RandomStructured,
    "random_unstructured": torch_prune.RandomUnstructured,
}
_PARAM_LIST = Sequence[tuple[nn.Module, str]]


class ModelPruning(Callback):
    """Prunes `parameters_to_prune` (default: every weight and bias) by `amount` at the end of training
    epochs (or validation epochs with `prune_on_train_epoch_end=False`).

    `pruning_fn` is one of "l1_unstructured", "random_unstructured", "ln_structured", "random_structured",
    a callable, or a `BasePruningMethod` class. `amount`, `apply_pruning` and
    `use_lottery_ticket_hypothesis` may be functions of the epoch. With `make_pruning_permanent`,
    checkpoints hold the pruned weights and training ends with the masks folded into the weights.
    """

    PARAMETER_NAMES = ("weight", "bias")

    def __init__(
        self,
        pruning_fn: Callable[..., Any] | str,
        parameters_to_prune: _PARAM_LIST = (),
        parameter_names: list[str] | None = None,
        use_global_unstructured: bool = True,
        amount: int | float | Callable[[int], int | float] = 0.5,
        apply_pruning: bool | Callable[[int], bool] = True,
        make_pruning_permanent: bool = True,
        use_lottery_ticket_hypothesis: bool | Callable[[int], bool] = True,
        resample_parameters: bool = False,
        pruning_dim: int | None = None,
        pruning_norm: int | None = None,
        verbose: int = 0,
        prune_on_train_epoch_end: bool = True,
    ) -> None:
        self._use_global_unstructured = use_global_unstructured
        self._parameters_to_prune: Any = parameters_to_prune
        self._use_lottery_ticket_hypothesis = use_lottery_ticket_hypothesis
        self._resample_parameters = resample_parameters
        self._prune_on_train_epoch_end = prune_on_train_epoch_end
        self._parameter_names = tuple(parameter_names or self.PARAMETER_NAMES)
        self._global_kwargs: dict[str, Any] = {}
        self._original_layers: dict[int, dict[str, Any]] | None = None
        self._pruning_method_name: str | None = None
        for name in self._parameter_names:
            if name not in self.PARAMETER_NAMES:
                raise MisconfigurationException(
                    f"The provided `parameter_names` name: {name} isn't in {self.PARAMETER_NAMES}"
                )
        if isinstance(pruning_fn, str):
            key = pruning_fn.lower()
            if key not in _FUNCTIONS:
                raise MisconfigurationException(
                    f"The provided `pruning_fn` {pruning_fn} isn't available in PyTorch's built-in functions: "
                    f"{list(_FUNCTIONS)}"
                )
            kwargs: dict[str, Any] = {}
            if key.endswith("_structured"):
                if pruning_dim is None:
                    raise MisconfigurationException(
                        "When requesting `structured` pruning, the `pruning_dim` should be provided."
                    )
                if key == "ln_structured":
                    if pruning_norm is None:
                        raise MisconfigurationException(
                            "When requesting `ln_structured` pruning, the `pruning_norm` should be provided."
                        )
                    kwargs["n"] = pruning_norm
                kwargs["dim"] = pruning_dim
            if use_global_unstructured:
                self._global_kwargs = kwargs
                method: Any = _METHODS[key]
                self._pruning_method_name = method.__name__
                pruning_fn = method
            else:
                self._pruning_method_name = _FUNCTIONS[key].__name__
                pruning_fn = partial(_FUNCTIONS[key], **kwargs)
        elif self._is_pruning_method(pruning_fn):
            if not use_global_unstructured:
                raise MisconfigurationException(
                    "PyTorch `BasePruningMethod` is currently only supported with `use_global_unstructured=True`."
                )
        elif not callable(pruning_fn):
            raise MisconfigurationException(
                f"`pruning_fn` is expected to be a str in {list(_FUNCTIONS)} or a PyTorch `BasePruningMethod`. "
                f"Found: {pruning_fn}. HINT: if passing a `BasePruningMethod`, pass the class, not an instance"
            )
        if use_global_unstructured and getattr(pruning_fn, "PRUNING_TYPE", None) != "unstructured":
            raise MisconfigurationException(
                'Only the "unstructured" PRUNING_TYPE is supported with `use_global_unstructured=True`. Found method '
                f"{pruning_fn} of type {getattr(pruning_fn, 'PRUNING_TYPE', None)}. "
            )
        self.pruning_fn = pruning_fn
        self._apply_pruning = apply_pruning
        self._make_pruning_permanent = make_pruning_permanent
        if not (isinstance(amount, (int, float)) or callable(amount)):
            raise MisconfigurationException(
                "`amount` should be provided and be either an int, a float or Callable function."
            )
        self.amount = amount
        if verbose not in (0, 1, 2):
            raise MisconfigurationException("`verbose` must be any of (0, 1, 2)")
        self._verbose = verbose

    @staticmethod
    def _is_pruning_method(method: Any) -> bool:
        return inspect.isclass(method) and issubclass(method, torch_prune.BasePruningMethod)

    def filter_parameters_to_prune(self, parameters_to_prune: _PARAM_LIST = ()) -> _PARAM_LIST:
        """Override to narrow the (module, name) pairs to prune."""
        return parameters_to_prune

    def make_pruning_permanent(self, module: nn.Module) -> None:
        """Fold every pruning mask into its weight and remove the re-parametrisation."""
        for _, sub in module.named_modules():
            for key in list(sub._forward_pre_hooks):
                hook = sub._forward_pre_hooks[key]
                if isinstance(hook, torch_prune.BasePruningMethod):
                    hook.remove(sub)
                    del sub._forward_pre_hooks[key]

    @staticmethod
    def _copy_param(new: nn.Module, old: nn.Module, name: str) -> None:
        dst = getattr(new, name + "_orig") if hasattr(new, name + "_orig") else getattr(new, name)
        src = getattr(old, name)
        if isinstance(dst, Tensor) and isinstance(src, Tensor):
            dst.data = src.data.to(dst.device)

    def apply_lottery_ticket_hypothesis(self) -> None:
        """Reset the surviving weights to their values before training (or resample them)."""
        assert self._original_layers is not None
        for ref in self._original_layers.values():
            original = ref["data"]
            if self._resample_parameters and callable(getattr(original, "reset_parameters", None)):
                original = deepcopy(original)
                original.reset_parameters()
            for i, name in ref["names"]:
                self._copy_param(self._parameters_to_prune[i][0], original, name)

    def apply_pruning(self, amount: int | float) -> None:
        """Prune by `amount` now (globally or layer by layer)."""
        before = [self._pruned_stats(m, n) for m, n in self._parameters_to_prune] if self._verbose else []
        if self._use_global_unstructured:
            self._global_kwargs["amount"] = amount
            accepted = set(inspect.signature(self.pruning_fn).parameters) - {"self"}
            kwargs = {k: v for k, v in self._global_kwargs.items() if k in accepted}
            torch_prune.global_unstructured(self._parameters_to_prune, pruning_method=self.pruning_fn, **kwargs)
        else:
            for module, name in self._parameters_to_prune:
                self.pruning_fn(module, name=name, amount=amount)
        if self._verbose:
            after = [self._pruned_stats(m, n) for m, n in self._parameters_to_prune]
            total = sum(t for _, t in after)
            z0, z1 = sum(z for z, _ in before), sum(z for z, _ in after)
            log.info("Applied `%s`. Pruned: %d/%d (%.2f%%) -> %d/%d (%.2f%%)", self._pruning_method_name, z0, total,
                     100 * z0 / total, z1, total, 100 * z1 / total)

    @staticmethod
    def _pruned_stats(module: nn.Module, name: str) -> tuple[int, int]:
        mask = getattr(module, f"{name}_mask", None)
        if mask is None:
            return 0, 1
        return int((mask == 0).sum().item()), mask.numel()

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        params = self.sanitize_parameters_to_prune(pl_module, self._parameters_to_prune, self._parameter_names)
        self._parameters_to_prune = self.filter_parameters_to_prune(params)
        if self._use_lottery_ticket_hypothesis:
            self._original_layers = {}
            for i, (module, name) in enumerate(self._parameters_to_prune):
                ref = self._original_layers.setdefault(id(module), {"data": deepcopy(module), "names": []})
                ref["names"].append((i, name))

    def _run_pruning(self, epoch: int) -> None:
        prune = self._apply_pruning(epoch) if callable(self._apply_pruning) else self._apply_pruning
        amount = self.amount(epoch) if callable(self.amount) else self.amount
        if not prune or not amount:
            return
        self.apply_pruning(amount)
        lottery = self._use_lottery_ticket_hypothesis
        if lottery(epoch) if callable(lottery) else lottery:
            self.apply_lottery_ticket_hypothesis()

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._prune_on_train_epoch_end:
            self._run_pruning(pl_module.current_epoch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking and not self._prune_on_train_epoch_end:
            self._run_pruning(pl_module.current_epoch)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._make_pruning_permanent:
            self.make_pruning_permanent(pl_module)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if not self._make_pruning_permanent:
            return
        # the checkpoint holds plain pruned weights (weight = mask * weight_orig), loadable without the callback
        state = pl_module.state_dict()
        for name in {k[: -len("_mask")] for k in state if k.endswith("_mask")}:
            orig = state.pop(name + "_orig")
            mask = state.pop(name + "_mask")
            state[name] = mask.to(dtype=orig.dtype) * orig
        checkpoint["state_dict"] = {k: v.cpu() for k, v in state.items()}

    @staticmethod
    def sanitize_parameters_to_prune(pl_module: nn.Module, parameters_to_prune: _PARAM_LIST = (),
                                     parameter_names: Sequence[str] = ()) -> _PARAM_LIST:
        """Validate the (module, name) pairs, or build them from every module's weight/bias."""
        from torchbolt.core.module import LightningModule

        names = parameter_names or ModelPruning.PARAMETER_NAMES
        containers = (LightningModule, nn.Sequential, nn.ModuleList, nn.ModuleDict)
        modules = [m for m in pl_module.modules() if not isinstance(m, containers)]
        if not parameters_to_prune:
            return [(m, p) for p in names for m in modules if isinstance(getattr(m, p, None), nn.Parameter)]
        if isinstance(parameters_to_prune, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], nn.Module) and isinstance(p[1], str)
            for p in parameters_to_prune
        ):
            missing_modules = [m for m, _ in parameters_to_prune if not any(m is x for x in modules)]
            missing_params = [n for m, n in parameters_to_prune if any(m is x for x in modules) and not hasattr(m, n)]
            if missing_modules or missing_params:
                raise MisconfigurationException(
                    "Some provided `parameters_to_prune` don't exist in the model. Found missing modules: "
                    f"{missing_modules} and missing parameters: {missing_params}"
                )
            return parameters_to_prune
        raise MisconfigurationException(
            "The provided `parameters_to_prune` should either be list of tuple with 2 elements: (nn.Module, "
            "parameter_name_to_prune) or None"
        )
