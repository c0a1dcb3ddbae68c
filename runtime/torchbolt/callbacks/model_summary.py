"""`ModelSummary`: prints a table of the model's layers, parameter counts and size when fit starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer


@dataclass(frozen=True)
class LayerRow:
    """One line of the summary table: a submodule, its type and its own parameter count (with children)."""

    name: str
    type: str
    params: int
    mode: str  # "train" | "eval"
    in_size: str = "?"
    out_size: str = "?"


@dataclass(frozen=True)
class Summary:
    """The model summary as data; `str(summary)` renders the table printed at fit start."""

    rows: tuple[LayerRow, ...]
    trainable: int
    non_trainable: int
    size_mb: float
    train_modules: int
    eval_modules: int
    has_sizes: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __str__(self) -> str:
        return render(self)


def _count(params: Any) -> tuple[int, int]:
    """(trainable, non-trainable) element counts of unique, materialized parameters."""
    trainable = frozen = 0
    for p in params:
        if isinstance(p, nn.parameter.UninitializedParameter):
            continue  # lazy layers have no size until their first forward
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen


def _layers(module: nn.Module, max_depth: int) -> list[tuple[str, nn.Module]]:
    """Submodules down to `max_depth` levels (-1: all), in registration order, without the root."""
    out = []
    for name, sub in module.named_modules():
        if not name:
            continue
        depth = name.count(".") + 1
        if max_depth < 0 or depth <= max_depth:
            out.append((name, sub))
    return out


def _size(value: Any) -> str:
    """Shape of a tensor (or of each tensor in a collection) as text for the In/Out columns."""
    if isinstance(value, torch.Tensor):
        return str(list(value.shape))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_size(v) for v in value) + "]"
    return "?"


def _trace_sizes(module: nn.Module, layers: list[tuple[str, nn.Module]]) -> tuple[dict[str, tuple[str, str]], str]:
    """Runs `module.example_input_array` through the model once to record each layer's in/out shapes."""
    example = getattr(module, "example_input_array", None)
    sizes: dict[str, tuple[str, str]] = {}
    if example is None:
        return sizes, ""
    handles = []
    for name, sub in layers:
        def hook(_m: nn.Module, inputs: Any, output: Any, _name: str = name) -> None:
            first = inputs[0] if isinstance(inputs, tuple) and len(inputs) == 1 else inputs
            sizes[_name] = (_size(first), _size(output))
        handles.append(sub.register_forward_hook(hook))
    was_training = module.training
    try:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))

        def to(t: Any) -> Any:
            return t.to(device) if isinstance(t, torch.Tensor) else t

        module.eval()
        with torch.no_grad():
            if isinstance(example, dict):
                module(**{k: to(v) for k, v in example.items()})
            elif isinstance(example, (list, tuple)):
                module(*[to(v) for v in example])
            else:
                module(to(example))
        note = ""
    except Exception as err:  # a summary must never break fit; say why sizes are missing instead
        sizes.clear()
        note = f"In/Out sizes unavailable: forward(example_input_array) raised {type(err).__name__}: {err}"
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return sizes, note


def summarize(module: nn.Module, max_depth: int = 1) -> Summary:
    """Builds the summary of `module`: layers down to `max_depth` (-1: all) and parameter totals."""
    if not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < -1:
        raise ValueError(f"max_depth={max_depth!r} is invalid; use an int >= -1 (-1 lists every level).")
    layers = _layers(module, max_depth)
    sizes, note = _trace_sizes(module, layers)
    rows = []
    for name, sub in layers:
        trainable, frozen = _count(sub.parameters())
        in_size, out_size = sizes.get(name, ("?", "?"))
        rows.append(LayerRow(name, type(sub).__name__, trainable + frozen, "train" if sub.training else "eval",
                             in_size, out_size))
    unique = {id(p): p for p in module.parameters()}.values()
    trainable, frozen = _count(unique)
    size_bytes = sum(p.numel() * p.element_size() for p in unique
                     if not isinstance(p, nn.parameter.UninitializedParameter))
    modes = [m.training for _, m in module.named_modules()]
    return Summary(tuple(rows), trainable, frozen, size_bytes / 1e6, sum(modes), len(modes) - sum(modes),
                   has_sizes=bool(sizes), notes=(note,) if note else ())


def _human(n: int) -> str:
    """Parameter counts the way people read them: 1.2 K, 3.4 M."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def render(summary: Summary) -> str:
    """The summary as a plain-text table followed by the totals."""
    header = ["", "Name", "Type", "Params", "Mode"] + (["In sizes", "Out sizes"] if summary.has_sizes else [])
    table = [header]
    for i, r in enumerate(summary.rows):
        line = [str(i), r.name, r.type, _human(r.params), r.mode]
        if summary.has_sizes:
            line += [r.in_size, r.out_size]
        table.append(line)
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    rule = "-" * max(len(line) for line in lines)
    out = [lines[0], rule, *lines[1:], rule] if summary.rows else [rule]
    totals = [
        (_human(summary.trainable), "Trainable params"),
        (_human(summary.non_trainable), "Non-trainable params"),
        (_human(summary.total), "Total params"),
        (f"{summary.size_mb:.3f}", "Total estimated model params size (MB)"),
        (str(summary.train_modules), "Modules in train mode"),
        (str(summary.eval_modules), "Modules in eval mode"),
    ]
    out += [f"{value:<10}{label}" for value, label in totals]
    out += list(summary.notes)
    return "\n".join(out)


class ModelSummary(Callback):
    """Prints the layer table (down to `max_depth` levels; 0 disables) when fit starts."""

    def __init__(self, max_depth: int = 1) -> None:
        if not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < -1:
            raise ValueError(
                f"ModelSummary(max_depth={max_depth!r}) is invalid; use an int >= -1 (-1 lists all, 0 disables)."
            )
        self._max_depth = max_depth
        self.last_summary: Summary | None = None

    @property
    def max_depth(self) -> int:
        return self._max_depth

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._max_depth == 0 or not trainer.is_global_zero:
            return
        self.last_summary = summarize(pl_module, self._max_depth)
        print(render(self.last_summary), flush=True)
