"""DDPStrategy: one process per device, gradients averaged by torch's DistributedDataParallel."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from torchbolt.accelerators import Accelerator
from torchbolt.plugins.io import CheckpointIO
from torchbolt.plugins.layer_sync import LayerSync
from torchbolt.plugins.precision import Precision
from torchbolt.strategies.launchers import SpawnLauncher, SubprocessLauncher, install_child_guards
from torchbolt.strategies.parallel import DEFAULT_TIMEOUT, ParallelStrategy

#: Step methods that run through the wrapper's forward, so that DDP prepares its reducer around them.
_STEP_METHODS = ("training_step",)


class StepForward(nn.Module):
    """A module whose forward is one of the LightningModule's step methods (named in the first argument).

    DistributedDataParallel synchronizes gradients for what runs inside its forward; the loop calls
    `module.training_step(...)`, which the strategy redirects here.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        # The class's function, not the instance attribute: the attribute is the redirect to this wrapper.
        return getattr(type(self.module), method)(self.module, *args, **kwargs)


def redirect_steps(module: nn.Module, wrapper: nn.Module, methods: tuple[str, ...] = _STEP_METHODS) -> None:
    """Make `module.<method>(...)` call `wrapper(method, ...)` (instance attributes, undone by `restore_steps`).

    The redirect keeps the method's signature, so callers that inspect it (does training_step take
    batch_idx?) see the user's method.
    """
    for name in methods:
        redirect = functools.partial(wrapper, name)
        redirect.__signature__ = inspect.signature(getattr(module, name))  # type: ignore[attr-defined]
        module.__dict__[name] = redirect


def restore_steps(module: nn.Module, methods: tuple[str, ...] = _STEP_METHODS) -> None:
    for name in methods:
        module.__dict__.pop(name, None)


class DDPStrategy(ParallelStrategy):
    """DistributedDataParallel over a gloo (CPU) or NCCL (CUDA) process group.

    `start_method`: 'popen' re-runs the script per rank (strategy='ddp'), 'spawn'/'fork' start processes
    with torch.multiprocessing ('ddp_spawn', 'ddp_fork'). Other keyword arguments go to
    DistributedDataParallel (e.g. bucket_cap_mb, broadcast_buffers).
    """

    strategy_name = "ddp"

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        parallel_devices: list[torch.device] | None = None,
        cluster_environment: Any = None,
        checkpoint_io: CheckpointIO | None = None,
        precision_plugin: Precision | None = None,
        process_group_backend: str | None = None,
        timeout: dt.timedelta | None = DEFAULT_TIMEOUT,
        start_method: str = "popen",
        find_unused_parameters: bool = False,
        static_graph: bool = False,
        gradient_as_bucket_view: bool = False,
        **ddp_kwargs: Any,
    ) -> None:
        super().__init__(accelerator, parallel_devices, cluster_environment, checkpoint_io, precision_plugin,
                         process_group_backend, timeout)
        if start_method not in ("popen", "spawn", "fork", "forkserver"):
            raise ValueError(
                f"DDPStrategy(start_method={start_method!r}) is invalid: use 'popen', 'spawn', 'fork' or 'forkserver'."
            )
        self.start_method = start_method
        self.find_unused_parameters = find_unused_parameters
        self.static_graph = static_graph
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.ddp_kwargs = ddp_kwargs
        self.layer_sync: LayerSync | None = None

    def configure_launcher(self, num_processes: int, num_nodes: int, node_rank: int, launch: bool) -> None:
        """Pick the launcher for this start method (None when the ranks already exist)."""
        if not launch:
            self.launcher = None
        elif self.start_method == "popen":
            self.launcher = SubprocessLauncher(num_processes, num_nodes, node_rank)
        else:
            self.launcher = SpawnLauncher(num_processes, self.start_method, num_nodes, node_rank, strategy=self)

    def setup_environment(self) -> None:
        install_child_guards()
        super().setup_environment()

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self._fitting:
            # As Lightning: validate/test/predict run the bare module on every rank (no gradients to reduce;
            # DDP would also refuse a module without trainable parameters). Metrics still sync through
            # self.log(sync_dist=True) and torchmetrics.
            return module
        if self.layer_sync is not None:
            module = self.layer_sync.apply(module)
            self._lightning_module = module
        if self.world_size <= 1:
            return module
        device_ids = [self.root_device.index] if self.root_device.type == "cuda" else None
        wrapper = DistributedDataParallel(
            StepForward(module), device_ids=device_ids, find_unused_parameters=self.find_unused_parameters,
            static_graph=self.static_graph, gradient_as_bucket_view=self.gradient_as_bucket_view, **self.ddp_kwargs,
        )
        redirect_steps(module, wrapper)
        return wrapper

    def no_backward_sync(self, module: nn.Module) -> Any:
        """Context that skips the gradient all-reduce (for accumulation micro-batches)."""
        import contextlib

        if isinstance(self.model, DistributedDataParallel):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def on_exception(self, exception: BaseException) -> None:
        """DistributedDataParallel's error about parameters that took no part in the loss says what to do in
        torch's terms; add the Trainer's way out."""
        message = str(exception)
        if "Expected to have finished reduction in the prior iteration" in message and exception.args:
            names = _unused_parameter_names(message, self.lightning_module)
            which = f" ({', '.join(names)})" if names else ""
            exception.args = (
                f"{message}\n\nSome parameters of the LightningModule{which} did not take part in the loss that "
                "training_step returned. If that is intended, let DDP find them: Trainer(strategy="
                "'ddp_find_unused_parameters_true') or DDPStrategy(find_unused_parameters=True) (slower); otherwise "
                "make every parameter contribute to the loss, or set requires_grad=False on those it should not "
                "train.",
                *exception.args[1:],
            )

    def teardown(self) -> None:
        """The module the user gave comes back as it was: its step methods no longer go through
        DistributedDataParallel, and after fit its batch-norm layers are plain again (as Lightning)."""
        module = self.lightning_module
        if module is not None:
            restore_steps(module)
            if self._fitting and self.layer_sync is not None:
                module = self._lightning_module = self.layer_sync.revert(module)
        self.model = module
        super().teardown()


def _unused_parameter_names(message: str, module: nn.Module | None, limit: int = 8) -> list[str]:
    """The names of the parameters DDP's reduction error lists by index ("Parameter indices which did not
    receive grad for rank R: 4 5"): DDP numbers the trainable parameters in `named_parameters` order."""
    import re

    found = re.search(r"did not receive grad for rank \d+: ([\d ]+)", message)
    if found is None or module is None:
        return []
    trainable = [name for name, param in module.named_parameters() if param.requires_grad]
    names = [trainable[i] for i in map(int, found.group(1).split()) if i < len(trainable)]
    return names[:limit] + ([f"and {len(names) - limit} more"] if len(names) > limit else [])
