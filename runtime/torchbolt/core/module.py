"""LightningModule: an `nn.Module` that describes training, evaluation and optimizers through hooks."""

from __future__ import annotations

import builtins
import numbers
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from torchbolt.core.hooks import STEP_OUTPUT, CheckpointHooks, DataHooks, ModelHooks
from torchbolt.utilities.exceptions import MisconfigurationException
from torchbolt.utilities.hparams import HyperparametersMixin

if TYPE_CHECKING:
    from torchbolt.callbacks.callback import Callback
    from torchbolt.core.optimizer import LightningOptimizer
    from torchbolt.trainer.trainer import Trainer

_ALLOWED_VALUE_TYPES = (numbers.Number, Tensor)


class LightningModule(HyperparametersMixin, ModelHooks, DataHooks, CheckpointHooks, nn.Module):
    """Base class for models trained by `torchbolt.Trainer`: define `training_step` and `configure_optimizers`."""

    CHECKPOINT_HYPER_PARAMS_KEY = "hyper_parameters"
    CHECKPOINT_HYPER_PARAMS_NAME = "hparams_name"
    CHECKPOINT_HYPER_PARAMS_TYPE = "hparams_type"

    __jit_unused_properties__: list[str] = [
        "trainer", "device", "dtype", "current_epoch", "global_step", "global_rank", "local_rank", "logger",
        "loggers", "automatic_optimization", "hparams", "hparams_initial", "on_gpu",
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plain attributes are written with object.__setattr__: nn.Module.__setattr__ costs a few
        # isinstance checks per write, and some of these change every step.
        object.__setattr__(self, "_trainer", None)
        object.__setattr__(self, "_automatic_optimization", True)
        object.__setattr__(self, "_strict_loading", None)
        object.__setattr__(self, "_device", torch.device("cpu"))
        object.__setattr__(self, "_dtype", torch.get_default_dtype())
        object.__setattr__(self, "_example_input_array", None)
        object.__setattr__(self, "_param_requires_grad_state", {})
        object.__setattr__(self, "_log_hyperparams", True)

    # ------------------------------------------------------------------------------------------------
    # Trainer link and run state
    # ------------------------------------------------------------------------------------------------
    @property
    def trainer(self) -> Trainer:
        """The Trainer running this module; RuntimeError when the module is not attached to one."""
        trainer = self.__dict__.get("_trainer")
        if trainer is None and not self.__dict__.get("_jit_is_scripting", False):
            raise RuntimeError(f"{self.__class__.__qualname__} is not attached to a `Trainer`.")
        return trainer  # type: ignore[return-value]

    @trainer.setter
    def trainer(self, trainer: Trainer | None) -> None:
        for child in self.modules():
            if isinstance(child, LightningModule):
                object.__setattr__(child, "_trainer", trainer)

    @property
    def _current_fx_name(self) -> str | None:
        """Name of the hook being run by the Trainer (None outside the Trainer's control flow)."""
        trainer = self.__dict__.get("_trainer")
        return None if trainer is None else trainer._channel.context.fx

    @_current_fx_name.setter
    def _current_fx_name(self, name: str | None) -> None:
        trainer = self.__dict__.get("_trainer")
        if trainer is not None:
            trainer._channel.context.fx = name

    @property
    def device(self) -> torch.device:
        """The device the module lives on (set by the Trainer before `setup`, tracked through `.to()`)."""
        return self.__dict__["_device"]

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the module's parameters."""
        return self.__dict__["_dtype"]

    @dtype.setter
    def dtype(self, value: torch.dtype) -> None:
        object.__setattr__(self, "_dtype", value)

    @property
    def on_gpu(self) -> bool:
        """True when the module is on a CUDA device."""
        return self.device.type == "cuda"

    @property
    def current_epoch(self) -> int:
        """The Trainer's current epoch (0 when detached)."""
        trainer = self.__dict__.get("_trainer")
        return trainer.current_epoch if trainer is not None else 0

    @property
    def global_step(self) -> int:
        """Number of optimizer steps taken so far (0 when detached)."""
        trainer = self.__dict__.get("_trainer")
        return trainer.global_step if trainer is not None else 0

    @property
    def global_rank(self) -> int:
        """Rank of this process (always 0 on one device)."""
        trainer = self.__dict__.get("_trainer")
        return trainer.global_rank if trainer is not None else 0

    @property
    def local_rank(self) -> int:
        """Rank of this process on its node (always 0 on one device)."""
        trainer = self.__dict__.get("_trainer")
        return trainer.local_rank if trainer is not None else 0

    @property
    def logger(self) -> Any:
        """The Trainer's first logger, or None."""
        trainer = self.__dict__.get("_trainer")
        return trainer.logger if trainer is not None else None

    @property
    def loggers(self) -> list[Any]:
        """All loggers of the Trainer (empty when detached)."""
        trainer = self.__dict__.get("_trainer")
        return trainer.loggers if trainer is not None else []

    @property
    def automatic_optimization(self) -> bool:
        """True (default): the Trainer steps the optimizer. Set False in `__init__` to step it yourself."""
        return self.__dict__["_automatic_optimization"]

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        object.__setattr__(self, "_automatic_optimization", bool(value))

    @property
    def strict_loading(self) -> bool:
        """Whether checkpoint restores require an exact key match (default True)."""
        value = self.__dict__.get("_strict_loading")
        return True if value is None else value

    @strict_loading.setter
    def strict_loading(self, value: bool) -> None:
        object.__setattr__(self, "_strict_loading", value)

    @property
    def example_input_array(self) -> Any:
        """An example input used by the model summary and exports."""
        return self.__dict__.get("_example_input_array")

    @example_input_array.setter
    def example_input_array(self, value: Any) -> None:
        object.__setattr__(self, "_example_input_array", value)

    # ------------------------------------------------------------------------------------------------
    # Device tracking
    # ------------------------------------------------------------------------------------------------
    def to(self, *args: Any, **kwargs: Any) -> LightningModule:
        """nn.Module.to that also records the new device and dtype."""
        device, dtype, *_ = torch._C._nn._parse_to(*args, **kwargs)
        self._track(device, dtype)
        return super().to(*args, **kwargs)

    def cpu(self) -> LightningModule:
        """Move to the CPU."""
        self._track(torch.device("cpu"), None)
        return super().cpu()

    def cuda(self, device: torch.device | int | None = None) -> LightningModule:
        """Move to a CUDA device."""
        if device is None:
            device = torch.device("cuda")
        elif isinstance(device, int):
            device = torch.device("cuda", device)
        self._track(device, None)
        return super().cuda(device=device)

    def double(self) -> LightningModule:
        """Cast floating parameters to float64."""
        self._track(None, torch.double)
        return super().double()

    def float(self) -> LightningModule:
        """Cast floating parameters to float32."""
        self._track(None, torch.float)
        return super().float()

    def half(self) -> LightningModule:
        """Cast floating parameters to float16."""
        self._track(None, torch.half)
        return super().half()

    def _track(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        for child in self.modules():
            if isinstance(child, LightningModule):
                if device is not None:
                    object.__setattr__(child, "_device", torch.device(device))
                if dtype is not None:
                    object.__setattr__(child, "_dtype", dtype)

    # ------------------------------------------------------------------------------------------------
    # Steps and optimizers (user hooks)
    # ------------------------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The forward pass; same as nn.Module.forward."""
        return super().forward(*args, **kwargs)

    def training_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Compute and return the training loss of one batch (or a dict with a 'loss' key, or None to skip)."""
        raise MisconfigurationException(
            f"{type(self).__name__} does not define training_step(self, batch, batch_idx); the Trainer needs it "
            "to fit."
        )

    def validation_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Evaluate one validation batch (eval mode, gradients off)."""
        raise MisconfigurationException(f"{type(self).__name__} does not define validation_step.")

    def test_step(self, *args: Any, **kwargs: Any) -> STEP_OUTPUT:
        """Evaluate one test batch (eval mode, gradients off)."""
        raise MisconfigurationException(f"{type(self).__name__} does not define test_step.")

    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        """Return the prediction for one batch. Default: `self(batch)`."""
        batch = kwargs.get("batch", args[0] if args else None)
        return self(batch)

    def configure_callbacks(self) -> Sequence[Callback] | Callback:
        """Return callbacks to add to the Trainer's (replacing Trainer callbacks of the same type)."""
        return []

    def configure_optimizers(self) -> Any:
        """Return the optimizer(s) and optional LR scheduler(s); see the six accepted shapes in the docs."""
        raise MisconfigurationException(
            f"{type(self).__name__} does not define configure_optimizers(); the Trainer needs it to fit. "
            "Return for instance torch.optim.Adam(self.parameters(), lr=1e-3)."
        )

    def optimizers(self, use_pl_optimizer: bool = True) -> Any:
        """The optimizer(s) from configure_optimizers; a single one is returned on its own, not in a list."""
        trainer = self.trainer
        opts: list[Any] = trainer.lightning_optimizers if use_pl_optimizer else trainer.optimizers
        if isinstance(opts, list) and len(opts) == 1:
            return opts[0]
        return opts

    def lr_schedulers(self) -> Any:
        """The LR scheduler(s) from configure_optimizers: None, one scheduler, or a list."""
        configs = self.trainer.lr_scheduler_configs
        if not configs:
            return None
        schedulers = [c.scheduler for c in configs]
        return schedulers[0] if len(schedulers) == 1 else schedulers

    def manual_backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Run backward under manual optimization, with the backward hooks of callbacks and this module."""
        if self.automatic_optimization:
            raise MisconfigurationException(
                "manual_backward is for manual optimization: set `self.automatic_optimization = False` in "
                "__init__, or return the loss from training_step and let the Trainer call backward."
            )
        self.trainer._channel.manual_backward(loss, *args, **kwargs)

    def backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Run the backward pass. Override for custom backward; default `loss.backward(*args, **kwargs)`."""
        loss.backward(*args, **kwargs)

    def toggle_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> None:
        """Freeze (requires_grad=False) every parameter that only other optimizers own."""
        state: dict[Tensor, bool] = {}
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                for param in group["params"]:
                    if param in state:
                        continue
                    state[param] = param.requires_grad
                    param.requires_grad = False
        for group in optimizer.param_groups:  # type: ignore[union-attr]  # LightningOptimizer shares them
            for param in group["params"]:
                param.requires_grad = state.get(param, param.requires_grad)
        object.__setattr__(self, "_param_requires_grad_state", state)

    def untoggle_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> None:
        """Restore the requires_grad flags changed by `toggle_optimizer(optimizer)`."""
        raw = getattr(optimizer, "_optimizer", optimizer)
        state = self.__dict__.get("_param_requires_grad_state", {})
        for opt in self.trainer.optimizers:
            if opt is raw:
                continue
            for group in opt.param_groups:
                for param in group["params"]:
                    if param in state:
                        param.requires_grad = state[param]
        object.__setattr__(self, "_param_requires_grad_state", {})

    @contextmanager
    def toggled_optimizer(self, optimizer: Optimizer | LightningOptimizer) -> Generator[None, None, None]:
        """Context manager: `toggle_optimizer` on entry, `untoggle_optimizer` on exit."""
        self.toggle_optimizer(optimizer)
        try:
            yield
        finally:
            self.untoggle_optimizer(optimizer)

    def clip_gradients(
        self,
        optimizer: Optimizer,
        gradient_clip_val: int | builtins.float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip the gradients of `optimizer`'s parameters by norm (default) or value."""
        trainer = self.trainer
        if gradient_clip_val is None and gradient_clip_algorithm is None and not trainer.gradient_clip_val:
            return  # clipping is off (the Trainer checked its own settings when it was built): nothing to do
        if gradient_clip_val is None:
            gradient_clip_val = trainer.gradient_clip_val or 0.0
        elif trainer.gradient_clip_val is not None and trainer.gradient_clip_val != gradient_clip_val:
            raise MisconfigurationException(
                f"You have set Trainer(gradient_clip_val={trainer.gradient_clip_val!r}) and passed "
                f"clip_gradients(gradient_clip_val={gradient_clip_val!r}); set only one of them."
            )
        if gradient_clip_algorithm is None:
            gradient_clip_algorithm = trainer.gradient_clip_algorithm or "norm"
        else:
            gradient_clip_algorithm = gradient_clip_algorithm.lower()
            if trainer.gradient_clip_algorithm is not None and trainer.gradient_clip_algorithm != gradient_clip_algorithm:
                raise MisconfigurationException(
                    f"You have set Trainer(gradient_clip_algorithm={trainer.gradient_clip_algorithm!r}) and passed "
                    f"clip_gradients(gradient_clip_algorithm={gradient_clip_algorithm!r}); set only one of them."
                )
        if not isinstance(gradient_clip_val, (int, float)) or isinstance(gradient_clip_val, bool):
            raise TypeError(f"gradient_clip_val must be an int or a float, got {gradient_clip_val!r}.")
        from torchbolt.catalog import GRADIENT_CLIP_ALGORITHMS

        if gradient_clip_algorithm not in GRADIENT_CLIP_ALGORITHMS:
            raise MisconfigurationException(
                f"gradient_clip_algorithm={gradient_clip_algorithm!r} is invalid; allowed: "
                f"{list(GRADIENT_CLIP_ALGORITHMS)}."
            )
        if gradient_clip_val <= 0:
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(params, clip_value=gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(params, max_norm=gradient_clip_val)

    def configure_gradient_clipping(
        self,
        optimizer: Optimizer,
        gradient_clip_val: int | builtins.float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip gradients before the optimizer step; default uses the Trainer's clipping settings."""
        self.clip_gradients(
            optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm
        )

    def lr_scheduler_step(self, scheduler: Any, metric: Any | None) -> None:
        """Step one LR scheduler: `scheduler.step()`, or `scheduler.step(metric)` for plateau schedulers."""
        if metric is None:
            scheduler.step()
        else:
            scheduler.step(metric)

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Step the optimizer; the closure runs training_step, zero_grad and backward."""
        optimizer.step(closure=optimizer_closure)

    def optimizer_zero_grad(self, epoch: int, batch_idx: int, optimizer: Optimizer) -> None:
        """Zero the gradients of `optimizer`."""
        optimizer.zero_grad()

    # ------------------------------------------------------------------------------------------------
    # Logging
    # ------------------------------------------------------------------------------------------------
    def log(
        self,
        name: str,
        value: Any,
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable[..., Any] = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any | None = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        metric_attribute: str | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Log a scalar under `name` for the progress bar, the loggers and `trainer.callback_metrics`.

        `on_step`/`on_epoch` default by hook (step-level in training, epoch-level in evaluation); epoch values
        are reduced with `reduce_fx`, means weighted by `batch_size` (inferred from the batch when omitted).
        """
        trainer = self.__dict__.get("_trainer")
        if sync_dist and trainer is not None and trainer.world_size > 1:
            # Reduce across ranks now, so step values and epoch aggregates are the same on every rank.
            value = trainer.strategy.sync_logged(value, reduce_fx, sync_dist_group)
        if (trainer is not None and type(value) is Tensor and trainer._channel.metrics.log_repeat(
                name, value, (prog_bar, logger, on_step, on_epoch, reduce_fx, enable_graph, add_dataloader_idx),
                batch_size)):
            return  # the per-step fast path: this name was logged with these arguments before
        value = _check_log_value(name, value)
        if trainer is None:
            warnings.warn(
                f"self.log({name!r}, ...) was called on a module that is not attached to a Trainer; the value is "
                "dropped. This is expected when calling a step method directly (for instance in a unit test).",
                stacklevel=2,
            )
            return
        trainer._channel.metrics.log_from_module(
            self, name, value, prog_bar=prog_bar, logger=logger, on_step=on_step, on_epoch=on_epoch,
            reduce_fx=reduce_fx, enable_graph=enable_graph, add_dataloader_idx=add_dataloader_idx,
            batch_size=batch_size, metric_attribute=metric_attribute,
        )

    def log_dict(
        self,
        dictionary: Mapping[str, Any],
        prog_bar: bool = False,
        logger: bool | None = None,
        on_step: bool | None = None,
        on_epoch: bool | None = None,
        reduce_fx: str | Callable[..., Any] = "mean",
        enable_graph: bool = False,
        sync_dist: bool = False,
        sync_dist_group: Any | None = None,
        add_dataloader_idx: bool = True,
        batch_size: int | None = None,
        rank_zero_only: bool = False,
    ) -> None:
        """Log every `name: value` of `dictionary` (or every metric of a torchmetrics MetricCollection,
        under its prefixed name) with the same options as `log`."""
        from torchbolt.trainer.metrics import metric_collection_items

        collection = metric_collection_items(dictionary)
        if collection is not None:
            dictionary = collection
        if not isinstance(dictionary, Mapping):
            raise ValueError(
                f"self.log_dict() takes a mapping of names to scalars, got {type(dictionary).__name__}; use "
                "self.log(name, value) for a single value."
            )
        for key, val in dictionary.items():
            self.log(
                name=key, value=val, prog_bar=prog_bar, logger=logger, on_step=on_step, on_epoch=on_epoch,
                reduce_fx=reduce_fx, enable_graph=enable_graph, sync_dist=sync_dist,
                sync_dist_group=sync_dist_group, add_dataloader_idx=add_dataloader_idx, batch_size=batch_size,
                rank_zero_only=rank_zero_only,
            )

    # ------------------------------------------------------------------------------------------------
    # Utilities
    # ------------------------------------------------------------------------------------------------
    def print(self, *args: Any, **kwargs: Any) -> None:
        """Print on global rank 0, through the progress bar when it is showing (so it does not break it)."""
        trainer = self.__dict__.get("_trainer")
        if trainer is not None:
            if not trainer.is_global_zero:
                return
            bar = trainer.progress_bar_callback
            if bar is not None and getattr(bar, "is_enabled", False) and hasattr(bar, "print"):
                bar.print(*args, **kwargs)
                return
        builtins.print(*args, **kwargs)

    def all_gather(self, data: Any, group: Any | None = None, sync_grads: bool = False) -> Any:
        """Gather `data` (tensors, numbers, or collections of them) from all processes: each tensor gains a
        leading dimension of size world_size. On one process the data comes back (numbers become tensors)."""
        from torchbolt.utilities.apply_func import apply_to_collection

        data = apply_to_collection(data, (numbers.Number,), lambda x: torch.tensor(x, device=self.device))
        trainer = self.__dict__.get("_trainer")
        if trainer is None or trainer.world_size <= 1:
            return data
        strategy = trainer.strategy
        return apply_to_collection(data, Tensor, lambda t: strategy.all_gather(t, group=group, sync_grads=sync_grads))

    def freeze(self) -> LightningModule:
        """Set requires_grad=False on every parameter and switch to eval mode."""
        for param in self.parameters():
            param.requires_grad = False
        self.eval()
        return self

    def unfreeze(self) -> LightningModule:
        """Set requires_grad=True on every parameter and switch to train mode."""
        for param in self.parameters():
            param.requires_grad = True
        self.train()
        return self

    def to_onnx(self, file_path: str | Path | IO[bytes] | None = None, input_sample: Any | None = None,
                **kwargs: Any) -> Any:
        """Export to ONNX with `torch.onnx.export`, using `example_input_array` when no sample is given."""
        if input_sample is None:
            input_sample = self.example_input_array
            if input_sample is None:
                raise ValueError(
                    "to_onnx() needs an input: pass input_sample= or set self.example_input_array."
                )
        mode = self.training
        self.eval()
        try:
            if isinstance(input_sample, Tensor):
                input_sample = (input_sample,)
            return torch.onnx.export(self, input_sample, file_path, **kwargs)  # type: ignore[arg-type]
        finally:
            self.train(mode)

    def to_torchscript(self, file_path: str | Path | None = None, method: str | None = "script",
                       example_inputs: Any | None = None, **kwargs: Any) -> Any:
        """Compile to TorchScript by scripting (default) or tracing; save to `file_path` when given."""
        mode = self.training
        self.eval()
        # TorchScript inspects every attribute; the detached `trainer` property must not raise meanwhile.
        object.__setattr__(self, "_jit_is_scripting", True)
        try:
            if method == "script":
                module = torch.jit.script(self, **kwargs)
            elif method == "trace":
                inputs = example_inputs if example_inputs is not None else self.example_input_array
                if inputs is None:
                    raise ValueError(
                        "to_torchscript(method='trace') needs example_inputs= or self.example_input_array."
                    )
                module = torch.jit.trace(self, example_inputs=inputs, **kwargs)
            else:
                raise ValueError(f"to_torchscript(method={method!r}): method must be 'script' or 'trace'.")
        finally:
            object.__setattr__(self, "_jit_is_scripting", False)
            self.train(mode)
        if file_path is not None:
            torch.jit.save(module, str(file_path))
        return module

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO[bytes],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Build the module from a checkpoint: hyper-parameters from the file (overridden by `kwargs`), weights."""
        from torchbolt.core.saving import load_module_from_checkpoint

        return load_module_from_checkpoint(
            cls, checkpoint_path, map_location=map_location, hparams_file=hparams_file, strict=strict,
            weights_only=weights_only, **kwargs,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_trainer"] = None  # a Trainer holds open files and loaders; never pickle it along
        return state


def _check_log_value(name: str, value: Any) -> Any:
    """Validate a value passed to self.log: a number or a one-element tensor (or a torchmetrics Metric)."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"self.log({name!r}, ...) got a tensor with {value.numel()} elements (shape "
                f"{tuple(value.shape)}); log a scalar, for instance self.log({name!r}, value.mean())."
            )
        return value
    if isinstance(value, bool) or isinstance(value, numbers.Number):
        return value
    if isinstance(value, Mapping):
        raise ValueError(
            f"self.log({name!r}, ...) got a dict; log each entry with self.log_dict({{...}}) instead "
            "(nested dictionaries cannot be logged)."
        )
    if type(value).__name__ == "Metric" or hasattr(value, "compute") and hasattr(value, "update"):
        return value
    raise ValueError(
        f"self.log({name!r}, ...) got a value of type `{type(value).__name__}`, which cannot be logged; log a "
        "number or a one-element tensor."
    )
