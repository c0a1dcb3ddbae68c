"""`ModelSummary` / `summarize` at Lightning's `utilities.model_summary` path: a model's layers and
parameter counts as data (the ModelSummary callback prints the same table at fit start)."""

from __future__ import annotations

from typing import Any

from torch import nn

from torchbolt.callbacks.model_summary import Summary, render
from torchbolt.callbacks.model_summary import summarize as _summarize

__all__ = ["ModelSummary", "get_formatted_model_size", "get_human_readable_count", "summarize"]

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
