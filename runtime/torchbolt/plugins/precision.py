"""Precision plugins: what a numeric format means for the module, the batches, backward and the step.

The Trainer builds one from `precision=` (or takes the one passed in `plugins=`). The loop asks it to
convert the module and batches, to wrap step methods (`forward_context`), to scale the loss before
backward and to run the optimizer step (`optimizer_step`), which for "16-mixed" goes through a
`torch.amp.GradScaler`: gradients are unscaled before clipping and `on_before_optimizer_step`, a step
with inf/NaN gradients is skipped and the scale shrinks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.utilities.apply_func import apply_to_collection
from torchbolt.utilities.exceptions import MisconfigurationException

_HALF_DTYPES = {"16-true": torch.float16, "bf16-true": torch.bfloat16}


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Tensors created without a dtype inside the block get `dtype` (as under '*-true' precisions)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _cast_floats(batch: Any, dtype: torch.dtype) -> Any:
    return apply_to_collection(batch, Tensor, lambda t: t.to(dtype) if torch.is_floating_point(t) else t)


class Precision:
    """Full float32 precision ('32-true'): nothing to convert, nothing to wrap. Base of every plugin."""

    precision: str = "32-true"
    #: The parameter dtype the module is converted to ('*-true' precisions), None to leave it as it is.
    dtype: torch.dtype | None = None
    #: The GradScaler ('16-mixed'), None otherwise.
    scaler: torch.amp.GradScaler | None = None

    @property
    def is_noop(self) -> bool:
        """True when the plugin changes nothing, so the loop may take its fast path."""
        return type(self) is Precision

    def convert_module(self, module: nn.Module) -> nn.Module:
        """Cast the module's parameters and buffers when the precision asks for it."""
        return module

    def convert_input(self, batch: Any) -> Any:
        """Cast the floating tensors of a batch when the precision asks for it."""
        return batch

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        """The context step methods run in (autocast, default dtype)."""
        yield

    def module_init_context(self) -> contextlib.AbstractContextManager[None]:
        """The context `trainer.init_module()` builds modules in."""
        return contextlib.nullcontext()

    # Lightning spells the step contexts separately; they are the same here.
    def train_step_context(self) -> contextlib.AbstractContextManager[None]:
        return self.forward_context()

    val_step_context = test_step_context = predict_step_context = train_step_context

    def scale_loss(self, loss: Tensor) -> Tensor:
        """The tensor backward runs on (scaled for '16-mixed')."""
        return loss

    def unscale_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Undo the loss scale on the gradients of `optimizer` (a no-op without a scaler)."""

    def optimizer_step(
        self,
        optimizer: torch.optim.Optimizer,
        closure: Callable[[], Any],
        after_closure: Callable[[], None] | None = None,
        skip_if_no_loss: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Run `closure` (forward + backward), then `after_closure` (hooks, clipping), then the update."""
        if after_closure is None:
            return optimizer.step(closure=closure, **kwargs)

        def closure_then_hooks() -> Any:
            result = closure()
            after_closure()
            return result

        return optimizer.step(closure=closure_then_hooks, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this plugin (under the class name); empty when stateless."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the plugin's state into `checkpoint` under its class name, as Lightning does."""
        state = self.state_dict()
        if state:
            checkpoint[type(self).__qualname__] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the plugin's state from `checkpoint` when it holds one for this class."""
        state = checkpoint.get(type(self).__qualname__)
        if state is None and self.scaler is not None:
            state = checkpoint.get("native_amp_scaling_state")  # Lightning 1.x key
        if state:
            self.load_state_dict(state)

    def teardown(self) -> None:
        """Undo global changes made during the run."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(precision={self.precision!r})"


class MixedPrecision(Precision):
    """Automatic mixed precision: autocast around the step methods, float32 weights.

    '16-mixed' scales the loss with a `torch.amp.GradScaler` (pass `scaler=` to configure it);
    'bf16-mixed' needs no scaler.
    """

    def __init__(self, precision: str, device: str, scaler: torch.amp.GradScaler | None = None) -> None:
        if precision not in ("16-mixed", "bf16-mixed"):
            raise ValueError(
                f"MixedPrecision(precision={precision!r}) is invalid: pass '16-mixed' or 'bf16-mixed'."
            )
        if precision == "bf16-mixed" and scaler is not None:
            raise ValueError(
                f"MixedPrecision(precision='bf16-mixed', scaler={scaler!r}): bfloat16 needs no loss scaling; "
                "drop the scaler or use precision='16-mixed'."
            )
        self.precision = precision
        self.device = str(device)
        self.autocast_dtype = torch.float16 if precision == "16-mixed" else torch.bfloat16
        if precision == "16-mixed" and scaler is None:
            scaler = torch.amp.GradScaler(torch.device(self.device).type)
        self.scaler = scaler

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        with torch.autocast(torch.device(self.device).type, dtype=self.autocast_dtype):
            yield

    def scale_loss(self, loss: Tensor) -> Tensor:
        if self.scaler is None:
            return loss
        return self.scaler.scale(loss)

    def unscale_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def optimizer_step(
        self,
        optimizer: torch.optim.Optimizer,
        closure: Callable[[], Any],
        after_closure: Callable[[], None] | None = None,
        skip_if_no_loss: bool = True,
        **kwargs: Any,
    ) -> Any:
        if self.scaler is None:
            return super().optimizer_step(optimizer, closure, after_closure, skip_if_no_loss, **kwargs)
        if isinstance(optimizer, torch.optim.LBFGS):
            raise MisconfigurationException(
                "precision='16-mixed' cannot step torch.optim.LBFGS: the GradScaler cannot re-run its closure. "
                "Use precision='bf16-mixed' or '32-true' with LBFGS."
            )
        # GradScaler.step takes no closure: run forward/backward first, then unscale so that clipping and
        # on_before_optimizer_step see true gradient values.
        result = closure()
        self.scaler.unscale_(optimizer)
        if after_closure is not None:
            after_closure()
        if result is None and skip_if_no_loss:
            # training_step returned None: no backward ran, so there is nothing to step; keep the scaler's
            # per-optimizer state consistent for the next iteration.
            self.scaler.update()
            return None
        out = self.scaler.step(optimizer, **kwargs)  # skipped by the scaler when gradients hold inf/NaN
        self.scaler.update()
        return out

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.scaler is not None:
            self.scaler.load_state_dict(state_dict)


class HalfPrecision(Precision):
    """Everything in float16 ('16-true') or bfloat16 ('bf16-true'): weights, inputs and new tensors."""

    def __init__(self, precision: str = "16-true") -> None:
        if precision not in _HALF_DTYPES:
            raise ValueError(f"HalfPrecision(precision={precision!r}) is invalid: pass '16-true' or 'bf16-true'.")
        self.precision = precision
        self.dtype = _HALF_DTYPES[precision]

    def convert_module(self, module: nn.Module) -> nn.Module:
        assert self.dtype is not None
        return module.to(dtype=self.dtype)

    def convert_input(self, batch: Any) -> Any:
        assert self.dtype is not None
        return _cast_floats(batch, self.dtype)

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        assert self.dtype is not None
        with _default_dtype(self.dtype):
            yield

    def module_init_context(self) -> contextlib.AbstractContextManager[None]:
        assert self.dtype is not None
        return _default_dtype(self.dtype)


class DoublePrecision(Precision):
    """Everything in float64 ('64-true')."""

    precision = "64-true"
    dtype = torch.float64

    def convert_module(self, module: nn.Module) -> nn.Module:
        return module.double()

    def convert_input(self, batch: Any) -> Any:
        return _cast_floats(batch, torch.float64)

    @contextlib.contextmanager
    def forward_context(self) -> Iterator[None]:
        with _default_dtype(torch.float64):
            yield

    def module_init_context(self) -> contextlib.AbstractContextManager[None]:
        return _default_dtype(torch.float64)


def precision_plugin_for(precision: str, device_type: str) -> Precision:
    """The plugin for a resolved precision string on a device type ('cpu', 'cuda', 'mps')."""
    if precision == "32-true":
        return Precision()
    if precision == "64-true":
        return DoublePrecision()
    if precision in ("16-mixed", "bf16-mixed"):
        return MixedPrecision(precision, device_type)
    if precision in _HALF_DTYPES:
        return HalfPrecision(precision)
    raise MisconfigurationException(f"No precision plugin for precision={precision!r} in this build of torchbolt.")


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
