"""The LightningModule's one private line to its Trainer.

`self.log`, `_current_fx_name` and `manual_backward` need three run internals: the hook being run, the
metrics hub `self.log` records into, and manual optimization's backward. The Trainer hands them over in one
typed `ModuleChannel` (`trainer._channel`); the module reads nothing else private of the Trainer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

    from torchbolt.trainer.dispatch import RunContext
    from torchbolt.trainer.metrics import MetricsHub


class ModuleChannel:
    """What a LightningModule may use of its Trainer beyond the public properties.

    `context.fx` is the hook being run (written by the dispatcher; `self.log` checks it, and
    `_current_fx_name` reads and writes it); `metrics` is where `self.log` records (`log_repeat` for the
    per-step fast path, `log_from_module` otherwise); `manual_backward` runs backward between the backward
    hooks. Plain slots: `self.log` reads them on every step.
    """

    __slots__ = ("_backward", "context", "metrics")

    def __init__(self, context: RunContext, metrics: MetricsHub, backward: Callable[..., None]) -> None:
        self.context = context
        self.metrics = metrics
        self._backward = backward

    def manual_backward(self, loss: Tensor, *args: Any, **kwargs: Any) -> None:
        """Backward of `loss` for manual optimization, with the callbacks' and module's backward hooks."""
        self._backward(loss, *args, **kwargs)
