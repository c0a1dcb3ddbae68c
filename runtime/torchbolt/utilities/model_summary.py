"""`ModelSummary` / `summarize` at Lightning's `utilities.model_summary` path: a model's layers and
parameter counts as data (the ModelSummary callback prints the same table at fit start)."""

from __future__ import annotations

from typing import Any

from torch import nn

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.callbacks.model_summary import Summary, render
from torchbolt.callbacks.model_summary import summarize as _summarize

__all__ = ["LayerSummary", "ModelSummary", "get_formatted_model_size", "get_human_readable_count",
           "parse_batch_shape", "summarize"]

#: What an input/output size shows when it is not known (no example_input_array, or not a tensor).
UNKNOWN_SIZE = "?"

_UNITS = ("", "K", "M", "B", "T")


def get_human_readable_count(number: int) -> str:
    """`number` with a K/M/B/T suffix, one decimal: 123 -> '123', 1234 -> '1.2 K', 3e6 -> '3.0 M'."""
    if number < 0:
        raise ValueError(f"get_human_readable_count: expected a non-negative count, got {number}")
    value, unit = float(number), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    return str(int(number)) if unit == 0 else f"{value:,.1f} {_UNITS[unit]}"


def get_formatted_model_size(total_model_size: float) -> str:
    """A size in MB with three decimals and thousands separators."""
    return f"{total_model_size:,.3f}"


def parse_batch_shape(batch: Any) -> Any:
    """The shape of a tensor as a list, of a list/tuple of them as a list of those, else "?"."""
    if hasattr(batch, "shape"):
        return list(batch.shape)
    if isinstance(batch, (list, tuple)):
        return [parse_batch_shape(item) for item in batch]
    return UNKNOWN_SIZE


class LayerSummary:
    """One layer's line of a summary; its input/output sizes are recorded by the next forward pass through it."""

    def __init__(self, module: nn.Module) -> None:
        self._module = module
        self._in_size: Any = None
        self._out_size: Any = None
        self._handle: Any = module.register_forward_hook(self._record)

    def _record(self, _module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(inputs, tuple) and len(inputs) == 1:
            inputs = inputs[0]
        self._in_size = parse_batch_shape(inputs)
        self._out_size = parse_batch_shape(output)
        self.detach_hook()  # one forward pass is enough

    def detach_hook(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def __del__(self) -> None:
        self.detach_hook()

    @property
    def in_size(self) -> Any:
        return self._in_size if self._in_size is not None else UNKNOWN_SIZE

    @property
    def out_size(self) -> Any:
        return self._out_size if self._out_size is not None else UNKNOWN_SIZE

    @property
    def layer_type(self) -> str:
        return type(self._module).__name__

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self._module.parameters()
                   if not isinstance(p, nn.parameter.UninitializedParameter))

    @property
    def training(self) -> bool:
        return self._module.training


class ModelSummary:
    """The summary of `model` down to `max_depth` levels of submodules (-1: all, 0: none).

    `str(summary)` is the table; the properties give its columns and totals.
    """

    def __init__(self, model: nn.Module, max_depth: int = 1) -> None:
        self._model = model
        self._max_depth = max_depth
        self._summary: Summary = _summarize(model, max_depth)  # depth 0: totals only, no rows

    @property
    def max_depth(self) -> int:
        return self._max_depth

    @property
    def named_modules(self) -> list[tuple[str, nn.Module]]:
        modules = dict(self._model.named_modules())
        return [(row.name, modules[row.name]) for row in self._summary.rows]

    @property
    def layer_names(self) -> list[str]:
        return [row.name for row in self._summary.rows]

    @property
    def layer_types(self) -> list[str]:
        return [row.type for row in self._summary.rows]

    @property
    def in_sizes(self) -> list[Any]:
        return [row.in_size for row in self._summary.rows]

    @property
    def out_sizes(self) -> list[Any]:
        return [row.out_size for row in self._summary.rows]

    @property
    def param_nums(self) -> list[int]:
        return [row.params for row in self._summary.rows]

    @property
    def training_modes(self) -> list[bool]:
        return [row.mode == "train" for row in self._summary.rows]

    @property
    def total_parameters(self) -> int:
        return self._summary.total

    @property
    def trainable_parameters(self) -> int:
        return self._summary.trainable

    @property
    def total_layer_params(self) -> int:
        return sum(self.param_nums)

    @property
    def model_size(self) -> float:
        """Parameter size in MB."""
        return self._summary.size_mb

    def __str__(self) -> str:
        return render(self._summary)

    def __repr__(self) -> str:
        return str(self)


def summarize(lightning_module: nn.Module, max_depth: int = 1) -> ModelSummary:
    """The ModelSummary of `lightning_module` down to `max_depth` levels."""
    return ModelSummary(lightning_module, max_depth=max_depth)


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
