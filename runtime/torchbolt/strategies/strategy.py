"""Strategies: the small core the Trainer runs on, one per way of placing the model on processes.

A strategy owns the device, the (possibly wrapped) model, the precision plugin and checkpoint IO, and
answers the collective questions (reduce, all_gather, barrier, broadcast). The loop calls it for module
setup, batch transfer, backward and the optimizer step; everything else stays in the loop. Like Lightning
Fabric's core: setup_environment, setup_module, backward, optimizer_step, batch_to_device, the
collectives, process_dataloader, save/load checkpoint, teardown.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from torchbolt.accelerators import Accelerator, CPUAccelerator
from torchbolt.plugins.io import CheckpointIO, TorchCheckpointIO
from torchbolt.plugins.precision import Precision
from torchbolt.utilities.apply_func import move_data_to_device


class Strategy:
    """Base strategy: one process, one device. Subclasses add processes, wrapping and collectives."""

    #: Registry name (`Trainer(strategy=...)`).
    strategy_name = "base"

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        checkpoint_io: CheckpointIO | None = None,
        precision_plugin: Precision | None = None,
    ) -> None:
        self.accelerator = accelerator
        self._checkpoint_io = checkpoint_io
        self.precision_plugin: Precision = precision_plugin or Precision()
        self._lightning_module: nn.Module | None = None
        self.model: nn.Module | None = None
        self.launcher: Any = None
        self.optimizers: list[torch.optim.Optimizer] = []
        self._fitting = True  # set by setup_module: False for validate/test/predict

    # ---- identity -------------------------------------------------------------------------------------
    @property
    def checkpoint_io(self) -> CheckpointIO:
        if self._checkpoint_io is None:
            self._checkpoint_io = TorchCheckpointIO()
        return self._checkpoint_io

    @checkpoint_io.setter
    def checkpoint_io(self, io: CheckpointIO) -> None:
        self._checkpoint_io = io

    @property
    def root_device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def global_rank(self) -> int:
        return 0

    @property
    def local_rank(self) -> int:
        return 0

    @property
    def node_rank(self) -> int:
        return 0

    @property
    def world_size(self) -> int:
        return 1

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    @property
    def lightning_module(self) -> nn.Module | None:
        """The user's module, unwrapped."""
        return self._lightning_module

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int] | None:
        """num_replicas/rank for a DistributedSampler, None when not distributed."""
        return None

    # ---- setup ----------------------------------------------------------------------------------------
    def setup_environment(self) -> None:
        """Prepare the process (device, process group) before the module is touched."""
        if self.accelerator is None:
            self.accelerator = CPUAccelerator()
        self.accelerator.setup_device(self.root_device)

    def setup_module(self, module: nn.Module, fitting: bool = True) -> nn.Module:
        """Convert the module to the precision, move it to the device and wrap it; returns the module to call.
        `fitting` is False for validate/test/predict, where a strategy may skip wrappers only training needs."""
        self._lightning_module = module
        self._fitting = fitting
        module = self.precision_plugin.convert_module(module)
        if next(module.parameters(), None) is not None or next(module.buffers(), None) is not None:
            module.to(self.root_device)
        self.model = self._wrap(module)
        return self.model

    def _wrap(self, module: nn.Module) -> nn.Module:
        return module

    def setup_optimizers(self, optimizers: list[torch.optim.Optimizer]) -> list[torch.optim.Optimizer]:
        """Take the optimizers built by configure_optimizers (a strategy may replace them)."""
        self.optimizers = list(optimizers)
        return self.optimizers

    # ---- lifecycle hooks (the dispatcher calls them after callbacks and module; nothing to do here) ----
    def on_train_start(self) -> None:
        """When training begins."""

    def on_train_end(self) -> None:
        """When training ends."""

    def on_validation_start(self) -> None:
        """When a validation run begins."""

    def on_validation_end(self) -> None:
        """When a validation run ends."""

    def on_test_start(self) -> None:
        """When testing begins."""

    def on_test_end(self) -> None:
        """When testing ends."""

    def on_predict_start(self) -> None:
        """When prediction begins."""

    def on_predict_end(self) -> None:
        """When prediction ends."""

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Before anything else happens for a training batch."""

    # ---- per step -------------------------------------------------------------------------------------
    def batch_to_device(self, batch: Any, device: torch.device | None = None) -> Any:
        return move_data_to_device(batch, device or self.root_device)

    def backward(self, loss: Tensor, module: nn.Module | None = None, *args: Any, **kwargs: Any) -> Tensor:
        """The tensor to call backward on (scaled by the precision plugin); the caller runs the module's hook."""
        return self.precision_plugin.scale_loss(loss)

    def optimizer_step(
        self,
        optimizer: torch.optim.Optimizer,
        closure: Callable[[], Any],
        after_closure: Callable[[], None] | None = None,
        skip_if_no_loss: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Run the closure, `after_closure` (hooks, clipping) and the update through the precision plugin."""
        return self.precision_plugin.optimizer_step(optimizer, closure, after_closure, skip_if_no_loss, **kwargs)

    def no_backward_sync(self, module: nn.Module) -> Any:
        """Context for a gradient-accumulation micro-batch: skip gradient synchronization inside it (the
        optimization loop enters it for batches that do not step). Nothing to skip on one process."""
        import contextlib

        return contextlib.nullcontext()

    def abort_collectives(self) -> None:
        """After a failure: collectives become local no-ops so that exception hooks cannot hang."""

    # ---- collectives (identity on one process) -------------------------------------------------------
    def reduce(self, tensor: Any, group: Any = None, reduce_op: str | None = "mean") -> Any:
        return tensor

    def all_gather(self, tensor: Tensor, group: Any = None, sync_grads: bool = False) -> Tensor:
        return tensor

    def sync_logged(self, value: Any, reduce_fx: Any = "mean", group: Any = None) -> Any:
        """A value logged with `sync_dist=True`, reduced over the ranks with the log's `reduce_fx`."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = torch.tensor(float(value), device=self.root_device)
        if not isinstance(value, Tensor):
            return value
        name = reduce_fx if isinstance(reduce_fx, str) else getattr(reduce_fx, "__name__", "mean")
        name = {"avg": "mean", "amax": "max", "amin": "min"}.get(name.lower(), name.lower())
        return self.reduce(value, group=group, reduce_op=name if name in ("mean", "sum", "max", "min") else "mean")

    def barrier(self, name: str | None = None) -> None:
        pass

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        return obj

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        return decision

    # ---- data -----------------------------------------------------------------------------------------
    def process_dataloader(self, dataloader: Any, shuffle: bool | None = None) -> Any:
        return dataloader

    # ---- checkpoints ----------------------------------------------------------------------------------
    def lightning_module_state_dict(self) -> dict[str, Any]:
        assert self.lightning_module is not None
        return self.lightning_module.state_dict()

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_model_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> Any:
        assert self.lightning_module is not None
        return self.lightning_module.load_state_dict(state_dict, strict=strict)

    def load_optimizer_state_dict(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        optimizer.load_state_dict(state)

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: str | os.PathLike, storage_options: Any = None) -> None:
        """Write on global rank 0 only."""
        if self.is_global_zero:
            self.checkpoint_io.save_checkpoint(checkpoint, filepath, storage_options=storage_options)

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool | None = None) -> Any:
        return self.checkpoint_io.load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def remove_checkpoint(self, path: str | os.PathLike) -> None:
        if self.is_global_zero:
            self.checkpoint_io.remove_checkpoint(path)

    # ---- end ------------------------------------------------------------------------------------------
    def on_exception(self, exception: BaseException) -> None:
        """An entry point is ending with `exception` (after the on_exception hooks); a strategy may add to
        its message what the user can do about it."""

    #: whether teardown moves the module and optimizer states to the CPU (Lightning's FSDP keeps its shards)
    _cpu_at_teardown = True

    def teardown(self) -> None:
        """The end of every Trainer entry point (before on_fit_end and the teardown hooks, as Lightning):
        off the CPU, the module and the optimizer states move to the CPU, as in Lightning; checkpoint writes
        finish (an asynchronous write's error is raised here); the device is released."""
        module = self.lightning_module
        if self._cpu_at_teardown and self.root_device.type != "cpu":
            cpu = torch.device("cpu")
            for optimizer in getattr(self, "optimizers", ()):
                for state in optimizer.state.values():
                    for key, value in state.items():
                        if isinstance(value, Tensor):
                            state[key] = value.to(cpu)
            if module is not None:
                module.cpu()
        if self._checkpoint_io is not None:
            self._checkpoint_io.teardown()
        if self.accelerator is not None:
            self.accelerator.teardown()
        self.precision_plugin.teardown()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.root_device})"


class SingleDeviceStrategy(Strategy):
    """One process on one device (the default for `devices=1`)."""

    strategy_name = "single_device"

    def __init__(
        self,
        device: str | torch.device = "cpu",
        accelerator: Accelerator | None = None,
        checkpoint_io: CheckpointIO | None = None,
        precision_plugin: Precision | None = None,
    ) -> None:
        super().__init__(accelerator, checkpoint_io, precision_plugin)
        self._device = torch.device(device)

    @property
    def root_device(self) -> torch.device:
        return self._device
