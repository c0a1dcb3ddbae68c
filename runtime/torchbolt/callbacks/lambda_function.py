"""`LambdaCallback`: a callback assembled from plain functions, one per hook name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torchbolt.callbacks.callback import Callback
from torchbolt.catalog import CALLBACK_HOOKS, did_you_mean

#: Hooks a LambdaCallback may take; state_dict/load_state_dict are not hooks of the run.
LAMBDA_HOOKS: tuple[str, ...] = tuple(
    h.name for h in CALLBACK_HOOKS if h.name not in ("state_dict", "load_state_dict")
)


class LambdaCallback(Callback):
    """A callback whose hooks are the given functions, e.g. `LambdaCallback(on_train_start=fn)`.

    Each function receives the hook's arguments (`trainer, pl_module, ...`). Names must be Callback
    hook names; anything else raises TypeError with the closest hook name.
    """

    def __init__(self, **hook_fns: Callable[..., Any]) -> None:
        for name, fn in hook_fns.items():
            if name not in LAMBDA_HOOKS:
                hint = did_you_mean(name, LAMBDA_HOOKS)
                suggestion = f" Did you mean {hint!r}?" if hint else ""
                raise TypeError(
                    f"LambdaCallback got an unknown hook {name!r}.{suggestion} Pass functions named after "
                    "Callback hooks, e.g. on_train_epoch_end=fn."
                )
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback({name}=...) must be a function, got {type(fn).__name__}.")
        # None means "no function for this hook", as in Lightning's explicit keyword defaults.
        self._hook_fns = {name: fn for name, fn in hook_fns.items() if fn is not None}
        # Instance attributes shadow the no-op methods of Callback, so the dispatcher calls them.
        for name, fn in self._hook_fns.items():
            setattr(self, name, fn)

    @property
    def hooks(self) -> dict[str, Callable[..., Any]]:
        """The functions this callback was built from, by hook name."""
        return dict(self._hook_fns)
