"""FSDPStrategy: parameters, gradients and optimizer state sharded across ranks with FSDP2 (`fully_shard`).

Submodules chosen by `auto_wrap_policy` become their own shard groups, then the root. Step methods
run through `register_fsdp_forward_method` so parameters are gathered around them. Checkpoints are
either one full file written by rank 0 (`state_dict_type="full"`, loadable by any run, also a
single-device one) or a torch.distributed.checkpoint folder written by every rank ("sharded").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchbolt.accelerators import Accelerator
from torchbolt.plugins.io import CheckpointIO
from torchbolt.plugins.precision import Precision
from torchbolt.strategies.launchers import SubprocessLauncher, install_child_guards
from torchbolt.strategies.parallel import DEFAULT_TIMEOUT, ParallelStrategy

_STEP_METHODS = ("training_step", "validation_step", "test_step", "predict_step")
_SHARDING = {"FULL_SHARD": True, "SHARD_GRAD_OP": False}
#: File inside a sharded checkpoint folder with everything that is not a tensor shard.
META_FILE = "meta.pt"


def _wrap_predicate(policy: Any) -> Callable[[nn.Module], bool] | None:
    if policy is None:
        return None
    if isinstance(policy, type) and issubclass(policy, nn.Module):
        policy = {policy}
    if isinstance(policy, (set, frozenset, list, tuple)):
        classes = tuple(policy)
        if not all(isinstance(c, type) and issubclass(c, nn.Module) for c in classes):
            raise TypeError(f"FSDPStrategy(auto_wrap_policy={policy!r}) must be a set of nn.Module classes or a callable.")
        return lambda m: isinstance(m, classes)
    if callable(policy):
        return policy  # type: ignore[no-any-return]
    raise TypeError(f"FSDPStrategy(auto_wrap_policy={policy!r}) must be a set of nn.Module classes or a callable.")


class FSDPStrategy(ParallelStrategy):
    """Fully sharded data parallel on torch's FSDP2 (gloo on CPU, NCCL on CUDA)."""

    strategy_name = "fsdp"
    _cpu_at_teardown = False  # the sharded module stays where its shards are (as Lightning's FSDP teardown)

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        parallel_devices: list[torch.device] | None = None,
        cluster_environment: Any = None,
        checkpoint_io: CheckpointIO | None = None,
        precision_plugin: Precision | None = None,
        process_group_backend: str | None = None,
        timeout: dt.timedelta | None = DEFAULT_TIMEOUT,
        auto_wrap_policy: Any = None,
        sharding_strategy: str = "FULL_SHARD",
        cpu_offload: bool = False,
        state_dict_type: str = "full",
        **kwargs: Any,
    ) -> None:
        super().__init__(accelerator, parallel_devices, cluster_environment, checkpoint_io, precision_plugin,
                         process_group_backend, timeout)
        name = getattr(sharding_strategy, "name", sharding_strategy)
        if str(name).upper() not in _SHARDING:
            raise ValueError(
                f"FSDPStrategy(sharding_strategy={sharding_strategy!r}) is not available with FSDP2 in torchbolt: use "
                "'FULL_SHARD' or 'SHARD_GRAD_OP' (or strategy='ddp' for no sharding)."
            )
        if state_dict_type not in ("full", "sharded"):
            raise ValueError(f"FSDPStrategy(state_dict_type={state_dict_type!r}) is invalid: use 'full' or 'sharded'.")
        if kwargs:
            raise TypeError(f"FSDPStrategy() got unexpected arguments {sorted(kwargs)}.")
        self.auto_wrap_policy = auto_wrap_policy
        self.sharding_strategy = str(name).upper()
        self.cpu_offload = bool(getattr(cpu_offload, "offload_params", cpu_offload))
        self.state_dict_type = state_dict_type
        self.start_method = "popen"

    def configure_launcher(self, num_processes: int, num_nodes: int, node_rank: int, launch: bool) -> None:
        self.launcher = SubprocessLauncher(num_processes, num_nodes, node_rank) if launch else None

    def setup_environment(self) -> None:
        install_child_guards()
        super().setup_environment()

    def _wrap(self, module: nn.Module) -> nn.Module:
        from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard, register_fsdp_forward_method

        if self.world_size <= 1:
            return module
        options: dict[str, Any] = {"reshard_after_forward": _SHARDING[self.sharding_strategy]}
        if self.cpu_offload:
            options["offload_policy"] = CPUOffloadPolicy()
        predicate = _wrap_predicate(self.auto_wrap_policy)
        if predicate is not None:
            # Children first: fully_shard on a parent groups only the parameters its children did not take.
            for sub in reversed(list(module.modules())):
                if sub is not module and predicate(sub):
                    fully_shard(sub, **options)
        fully_shard(module, **options)
        for name in _STEP_METHODS:
            if callable(getattr(type(module), name, None)):
                signature = inspect.signature(getattr(type(module), name))
                register_fsdp_forward_method(module, name)
                # torch's wrapper reports the bound method's signature minus one more parameter; callers that
                # inspect it (does training_step take batch_idx?) must see the user's method.
                bound = module.__dict__.get(name)
                if bound is not None:
                    bound.__func__.__signature__ = signature
        return module

    def no_backward_sync(self, module: nn.Module) -> Any:
        """Context for an accumulation micro-batch: FSDP2 keeps its gradients unsharded on each rank (no
        reduce-scatter); the stepping batch then reduce-scatters the accumulated sum once."""
        from torch.distributed.fsdp import FSDPModule

        if isinstance(self.model, FSDPModule):
            return _gradient_sync_off(self.model)
        return contextlib.nullcontext()

    # ---- checkpoints ----------------------------------------------------------------------------------
    def _options(self, full: bool) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=full, cpu_offload=full)

    def lightning_module_state_dict(self) -> dict[str, Any]:
        """Full: the whole state dict on CPU (a collective; rank 0 keeps it). Sharded: this rank's shards."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        assert self.lightning_module is not None
        if self.world_size <= 1:
            return self.lightning_module.state_dict()
        return get_model_state_dict(self.lightning_module, options=self._options(self.state_dict_type == "full"))

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Full: a plain optimizer state dict (integer parameter ids) that any run can load."""
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        assert self.lightning_module is not None
        if self.world_size <= 1:
            return optimizer.state_dict()
        full = self.state_dict_type == "full"
        state = get_optimizer_state_dict(self.lightning_module, optimizer, options=self._options(full))
        # With full_state_dict the state lands on rank 0 only; other ranks get an empty dict.
        return _fqn_to_ids(state, self._param_names(optimizer)) if full and state else state

    def _param_names(self, optimizer: torch.optim.Optimizer) -> list[str]:
        assert self.lightning_module is not None
        names = {id(p): n for n, p in self.lightning_module.named_parameters()}
        return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]

    def load_model_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        assert self.lightning_module is not None
        if self.world_size <= 1:
            return self.lightning_module.load_state_dict(state_dict, strict=strict)
        full = not any(_is_dtensor(v) for v in state_dict.values())
        return set_model_state_dict(self.lightning_module, state_dict,
                                    options=StateDictOptions(full_state_dict=full, strict=strict))

    def load_optimizer_state_dict(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        assert self.lightning_module is not None
        if self.world_size <= 1:
            optimizer.load_state_dict(state)
            return
        if not any(isinstance(v, torch.Tensor) and v.dim() > 0 for st in state.get("state", {}).values()
                   for v in st.values()):
            # No per-parameter tensors (e.g. plain SGD): only the hyper-parameters need restoring, and torch's
            # full-state loader cannot place an empty state.
            for group, saved in zip(optimizer.param_groups, state.get("param_groups", []), strict=False):
                group.update({k: v for k, v in saved.items() if k != "params"})
            return
        if _has_integer_ids(state):
            state = _ids_to_fqn(state, self._param_names(optimizer))
            options = StateDictOptions(full_state_dict=True)
        else:
            options = StateDictOptions(full_state_dict=False)
        set_optimizer_state_dict(self.lightning_module, optimizer, state, options=options)

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath: str | os.PathLike, storage_options: Any = None) -> None:
        if self.state_dict_type == "full" or self.world_size <= 1:
            super().save_checkpoint(checkpoint, filepath, storage_options)
            return
        import torch.distributed.checkpoint as dcp

        folder = Path(filepath)
        tensors = {k: checkpoint[k] for k in ("state_dict", "optimizer_states") if k in checkpoint}
        dcp.save(tensors, storage_writer=dcp.FileSystemWriter(folder, overwrite=True))
        if self.is_global_zero:
            from torchbolt.checkpoint.io import atomic_save

            atomic_save({k: v for k, v in checkpoint.items() if k not in tensors}, folder / META_FILE)
        self.barrier()

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = "cpu", weights_only: bool | None = None) -> Any:
        folder = Path(path)
        if not folder.is_dir() or self.world_size <= 1:
            return super().load_checkpoint(path, map_location, weights_only)
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

        assert self.lightning_module is not None
        checkpoint = self.checkpoint_io.load_checkpoint(folder / META_FILE, map_location=map_location,
                                                        weights_only=weights_only)
        target: dict[str, Any] = {"state_dict": get_model_state_dict(self.lightning_module)}
        if self.optimizers:
            target["optimizer_states"] = [get_optimizer_state_dict(self.lightning_module, o) for o in self.optimizers]
        dcp.load(target, checkpoint_id=folder)
        checkpoint.update(target)
        return checkpoint


@contextlib.contextmanager
def _gradient_sync_off(model: Any) -> Iterator[None]:
    model.set_requires_gradient_sync(False)  # recurses into every fully_shard'ed submodule
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def load_sharded_checkpoint_full(folder: str | os.PathLike, weights_only: bool | None = None) -> dict[str, Any]:
    """Read a sharded FSDP checkpoint folder into one ordinary checkpoint dict in this process (no ranks
    needed): model weights as plain tensors. Optimizer states keep parameter names as keys."""
    import tempfile

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from torchbolt.checkpoint.io import load_for_caller

    folder = Path(folder)
    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp, "merged.pt")
        dcp_to_torch_save(folder, merged)
        tensors = load_for_caller(merged, map_location="cpu", weights_only=weights_only)
    meta_path = folder / META_FILE
    checkpoint = load_for_caller(meta_path, map_location="cpu", weights_only=weights_only) if meta_path.exists() else {}
    checkpoint.update(tensors)
    return checkpoint


def _is_dtensor(value: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(value, DTensor)


def _has_integer_ids(state: dict[str, Any]) -> bool:
    return any(isinstance(k, int) for k in state.get("state", {})) or any(
        isinstance(p, int) for g in state.get("param_groups", []) for p in g.get("params", []))


def _fqn_to_ids(state: dict[str, Any], names: list[str]) -> dict[str, Any]:
    index = {n: i for i, n in enumerate(names)}
    groups = [dict(g, params=[index[p] for p in g["params"]]) for g in state["param_groups"]]
    return {"state": {index[k]: v for k, v in state["state"].items()}, "param_groups": groups}


def _ids_to_fqn(state: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    names = list(names)
    groups = [dict(g, params=[names[p] for p in g["params"]]) for g in state["param_groups"]]
    return {"state": {names[k]: v for k, v in state["state"].items()}, "param_groups": groups}
