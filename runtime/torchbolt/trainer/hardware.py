"""Hardware choice, resolved once by one pure function into a frozen plan.

`resolve_plan(accelerator, devices, strategy, precision, num_nodes, env, ...)` is table-testable: the
same inputs and the same `env` (a mapping describing the machine and the process environment, see
`probe_environment`) always give the same plan or the same error. The Trainer builds its accelerator,
strategy and plugins from the plan; nothing else looks at the raw arguments.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torchbolt.accelerators import Accelerator, CPUAccelerator, CUDAAccelerator, MPSAccelerator
from torchbolt.catalog import (
    ACCELERATORS,
    PLUGIN_KINDS,
    PRECISION_ALIASES,
    PRECISIONS,
    REMOVED_STRATEGIES,
    STRATEGIES,
    STRATEGY_NAMES,
    UNAVAILABLE_ACCELERATORS,
    UNAVAILABLE_PRECISIONS,
    UNAVAILABLE_STRATEGIES,
)
from torchbolt.plugins.environments import (
    ClusterEnvironment,
    LightningEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from torchbolt.plugins.io import CheckpointIO
from torchbolt.plugins.layer_sync import LayerSync, TorchSyncBatchNorm
from torchbolt.plugins.precision import MixedPrecision, Precision
from torchbolt.utilities.exceptions import (
    MisconfigurationException,
    TrainerArgumentError,
    UnsupportedHardwareError,
)

_DEVICE_CLASSES: dict[str, type[Accelerator]] = {"cpu": CPUAccelerator, "cuda": CUDAAccelerator, "mps": MPSAccelerator}
#: Environment variables that describe the process layout (copied by `probe_environment`).
_LAYOUT_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR",
                "MASTER_PORT", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID",
                "SLURM_JOB_NAME", "SLURM_NODELIST", "SLURM_JOB_ID", "SLURM_NTASKS_PER_NODE")


@dataclass(frozen=True)
class HardwarePlan:
    """Where and how a run executes: accelerator, devices, process layout, strategy and precision."""

    accelerator: str = "cpu"
    device_ids: tuple[int, ...] = (0,)
    num_nodes: int = 1
    strategy: str = "single_device"
    #: Options implied by the strategy name (start_method, find_unused_parameters, cpu_offload).
    strategy_options: tuple[tuple[str, Any], ...] = ()
    precision: str = "32-true"
    #: Which environment started the processes: "local" (this process launches the others, if any),
    #: "torchbolt" (a child of torchbolt's launcher or variables set by hand), "torchelastic", "slurm",
    #: or "initialized" (the process group already exists).
    cluster: str = "local"
    global_rank: int = 0
    local_rank: int = 0
    node_rank: int = 0
    sync_batchnorm: bool = False
    #: User objects passed in, carried unchanged (None when built from names).
    accelerator_object: Accelerator | None = None
    strategy_object: Any = None
    precision_plugin: Precision | None = None
    checkpoint_io: CheckpointIO | None = None
    cluster_environment: ClusterEnvironment | None = None
    layer_sync: LayerSync | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def num_devices(self) -> int:
        return len(self.device_ids)

    @property
    def world_size(self) -> int:
        return self.num_devices * self.num_nodes

    @property
    def distributed(self) -> bool:
        return self.strategy not in ("single_device",)

    @property
    def launches_processes(self) -> bool:
        """True when this process must start the other local ranks itself."""
        return self.cluster == "local" and self.distributed and self.world_size > 1

    @property
    def device(self) -> str:
        """This process's device, e.g. 'cpu' or 'cuda:1'."""
        if self.accelerator == "cpu":
            return "cpu"
        index = self.device_ids[self.local_rank] if self.local_rank < len(self.device_ids) else self.device_ids[0]
        return f"{self.accelerator}:{index}"

    def option(self, name: str, default: Any = None) -> Any:
        return dict(self.strategy_options).get(name, default)


def probe_environment() -> dict[str, Any]:
    """What `resolve_plan` needs to know about this machine and process, read once here."""
    import torch
    import torch.distributed as dist

    env: dict[str, Any] = {k: os.environ[k] for k in _LAYOUT_VARS if k in os.environ}
    env["cuda_device_count"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None)
    env["mps_available"] = bool(mps is not None and mps.is_available())
    env["torch_version"] = torch.__version__
    env["cuda_build"] = torch.version.cuda or ""
    env["cpu_count"] = os.cpu_count() or 1
    # A Python prompt or notebook cannot be run again per rank: 'auto' picks 'ddp_fork' there (as Lightning).
    env["interactive"] = hasattr(sys, "ps1") or bool(sys.flags.interactive)
    if dist.is_available() and dist.is_initialized():
        env["dist_initialized"] = True
        env["dist_world_size"] = dist.get_world_size()
        env["dist_rank"] = dist.get_rank()
    return env


def _machine(env: Mapping[str, Any]) -> str:
    """'cpu (8 cores), cuda x2' — what this machine offers, for error messages."""
    parts = [f"cpu ({env.get('cpu_count', '?')} cores)"]
    if env.get("cuda_device_count"):
        parts.append(f"cuda x{env['cuda_device_count']}")
    if env.get("mps_available"):
        parts.append("mps")
    build = f"torch {env.get('torch_version', '?')}, " + (
        f"built with CUDA {env['cuda_build']}" if env.get("cuda_build") else "a CPU-only build")
    return f"this machine has: {', '.join(parts)} ({build})"


# ------------------------------------------------------------------------------------------------------------
# Accelerator
# ------------------------------------------------------------------------------------------------------------
def _resolve_accelerator(accelerator: Any, env: Mapping[str, Any]) -> tuple[str, Accelerator | None]:
    if isinstance(accelerator, Accelerator):
        name = getattr(accelerator, "name", "")
        kind = next((k for k, cls in _DEVICE_CLASSES.items() if isinstance(accelerator, cls)), name or "custom")
        if kind in _DEVICE_CLASSES:
            _require_available(kind, f"{type(accelerator).__name__}()", env)
        return kind, accelerator
    if not isinstance(accelerator, str):
        raise TrainerArgumentError(
            f"You selected an invalid accelerator name: `accelerator={accelerator!r}`. Available names are: "
            f"{', '.join(ACCELERATORS)} (or pass an Accelerator object)."
        )
    acc = accelerator.lower()
    if acc in UNAVAILABLE_ACCELERATORS:
        raise UnsupportedHardwareError(
            f"Trainer(accelerator={accelerator!r}) is not available: {UNAVAILABLE_ACCELERATORS[acc]}; "
            f"{_machine(env)}. Use accelerator='auto'."
        )
    if acc not in ACCELERATORS:
        raise TrainerArgumentError(
            f"You selected an invalid accelerator name: `accelerator={accelerator!r}`. Available names are: "
            f"{', '.join(a for a in ACCELERATORS if a not in UNAVAILABLE_ACCELERATORS)}."
        )
    if acc == "auto":
        if env.get("mps_available"):
            return "mps", None
        return ("cuda" if env.get("cuda_device_count") else "cpu"), None
    if acc == "gpu":
        if env.get("cuda_device_count"):
            return "cuda", None
        if env.get("mps_available"):
            return "mps", None
        raise UnsupportedHardwareError(
            f"Trainer(accelerator='gpu') found no GPU: CUDA reports no device and MPS is not available; "
            f"{_machine(env)}. Use accelerator='cpu' (or 'auto')."
        )
    _require_available(acc, f"accelerator={accelerator!r}", env)
    return acc, None


def _require_available(kind: str, what: str, env: Mapping[str, Any]) -> None:
    if kind == "cuda" and not env.get("cuda_device_count"):
        raise UnsupportedHardwareError(
            f"Trainer({what}) needs a CUDA GPU, but CUDA is not available; {_machine(env)}. "
            "Use accelerator='cpu' (or 'auto')."
        )
    if kind == "mps" and not env.get("mps_available"):
        raise UnsupportedHardwareError(
            f"Trainer({what}) needs Apple's MPS backend, which is not available; {_machine(env)}. "
            "Use accelerator='cpu' (or 'auto')."
        )


# ------------------------------------------------------------------------------------------------------------
# Devices
# ------------------------------------------------------------------------------------------------------------
def _parse_devices(devices: Any, acc: str, env: Mapping[str, Any], external_local: int | None) -> tuple[int, ...]:
    """Device indices for this node. Error messages follow Lightning's wording."""
    if devices in ([], 0, "0") or devices is False:
        raise MisconfigurationException(f"`Trainer(devices={devices!r})` value is not a valid input using {acc} accelerator.")
    if not isinstance(devices, (int, str, list, tuple)):
        raise TrainerArgumentError(
            f"Trainer(devices={devices!r}) has type {type(devices).__name__}; pass an int, -1, a list of ints, a string "
            "such as '0,1', or 'auto'."
        )
    if isinstance(devices, str) and devices.strip() == "auto":
        if external_local is not None:
            # torchrun/srun decided how many processes run on this node; 'auto' follows it.
            return tuple(range(external_local))
        count = {"cpu": 1, "cuda": int(env.get("cuda_device_count") or 0), "mps": 1}.get(acc, 1)
        return tuple(range(max(count, 1)))
    if acc == "cpu":
        text = devices.strip() if isinstance(devices, str) else None
        value: Any = int(text) if text is not None and text.isdigit() else devices
        if not isinstance(value, int) or value <= 0:
            raise TrainerArgumentError(
                f"`devices` selected with `CPUAccelerator` should be an int > 0 (got {devices!r}): on CPU, devices=N "
                "starts N processes; lists, '0,1' and -1 select GPUs."
            )
        return tuple(range(int(value)))
    available = list(range(int(env.get("cuda_device_count") or 0))) if acc == "cuda" else [0]
    if isinstance(devices, str):
        text = devices.strip()
        if text == "-1":
            devices = -1
        elif "," in text:
            try:
                devices = [int(p) for p in text.split(",") if p.strip()]
            except ValueError:
                raise TrainerArgumentError(
                    f"Trainer(devices={devices!r}) is not a comma-separated list of device indices like '0,1'."
                ) from None
        elif text.isdigit():
            devices = int(text)
        else:
            raise TrainerArgumentError(
                f"Trainer(devices={devices!r}) is invalid: pass an int count, -1, a list of indices, a string such as "
                "'0,1', or 'auto'."
            )
    if isinstance(devices, bool):
        devices = int(devices)
    if isinstance(devices, int):
        if devices == -1:
            return tuple(available)
        if devices < -1:
            raise MisconfigurationException(
                f"`Trainer(devices={devices})` value is not a valid input using {acc} accelerator: pass -1 for all "
                "devices or a count >= 1."
            )
        indices = list(range(devices))
    else:
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in devices):
            raise TrainerArgumentError(f"Trainer(devices={devices!r}) must list device indices as ints.")
        indices = list(devices)
    if len(set(indices)) != len(indices):
        raise TrainerArgumentError(f"Trainer(devices={devices!r}) lists a device twice.")
    missing = [i for i in indices if i not in available]
    if missing:
        raise MisconfigurationException(
            f"You requested {acc}: {indices}\n But your machine only has: {available} ({_machine(env)})."
        )
    return tuple(indices)


# ------------------------------------------------------------------------------------------------------------
# Precision
# ------------------------------------------------------------------------------------------------------------
def _resolve_precision(precision: Any, acc: str, notes: list[str]) -> str:
    if precision is None:
        return "32-true"
    if isinstance(precision, bool) or not isinstance(precision, (int, str)):
        raise TrainerArgumentError(
            f"Precision {precision!r} is invalid. Allowed precision values: {PRECISIONS} (or 16, 32, 64, 'bf16')."
        )
    if isinstance(precision, str) and precision in UNAVAILABLE_PRECISIONS:
        raise UnsupportedHardwareError(
            f"Trainer(precision={precision!r}) is not available: {UNAVAILABLE_PRECISIONS[precision]}. Use "
            "'bf16-mixed' or '16-mixed' for mixed precision."
        )
    if precision in PRECISION_ALIASES and not (isinstance(precision, str) and precision in PRECISIONS):
        resolved = PRECISION_ALIASES[precision]
        if str(precision) in ("16", "bf16"):
            notes.append(
                f"`precision={precision}` is supported for historical reasons but its usage is discouraged; write "
                f"precision={resolved!r} instead."
            )
        precision = resolved
    if precision not in PRECISIONS:
        raise TrainerArgumentError(
            f"Precision {precision!r} is invalid. Allowed precision values: {PRECISIONS} (or 16, 32, 64, 'bf16')."
        )
    if precision == "16-mixed" and acc == "cpu":
        notes.append(
            "You passed `Trainer(accelerator='cpu', precision='16-mixed')`, but AMP with float16 is not supported on "
            "CPU; using precision='bf16-mixed' instead (pass plugins=[MixedPrecision('16-mixed', 'cpu')] to force "
            "float16 with a GradScaler)."
        )
        precision = "bf16-mixed"
    return str(precision)


# ------------------------------------------------------------------------------------------------------------
# Plugins
# ------------------------------------------------------------------------------------------------------------
_PLUGIN_BASES: dict[str, type] = {
    "Precision": Precision, "CheckpointIO": CheckpointIO, "ClusterEnvironment": ClusterEnvironment,
    "LayerSync": LayerSync,
}
assert set(_PLUGIN_BASES) == set(PLUGIN_KINDS), "catalog.PLUGIN_KINDS and the runtime's plugin bases drifted"


def _sort_plugins(plugins: Any) -> dict[str, Any]:
    if plugins is None:
        return {}
    items = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    found: dict[str, Any] = {}
    for plugin in items:
        kind = next((k for k, base in _PLUGIN_BASES.items() if isinstance(plugin, base)), None)
        if kind is None:
            raise TrainerArgumentError(
                f"Trainer(plugins=[{plugin!r}]): {type(plugin).__name__} is not a plugin. Pass instances of "
                f"{', '.join(PLUGIN_KINDS)} (from torchbolt.plugins), e.g. plugins=[AsyncCheckpointIO()]."
            )
        if kind in found:
            raise TrainerArgumentError(
                f"Received multiple values for {kind} plugins: {found[kind]!r} and {plugin!r}. Expected one value for "
                f"each plugin kind; keep one {kind}."
            )
        found[kind] = plugin
    return found


# ------------------------------------------------------------------------------------------------------------
# Process layout (who started this process)
# ------------------------------------------------------------------------------------------------------------
def _layout(env: Mapping[str, Any], given: ClusterEnvironment | None) -> tuple[str, int, int, int, int, int | None]:
    """(cluster, world_size, global_rank, local_rank, node_rank, local_world_size) from the environment."""
    str_env = {k: str(v) for k, v in env.items() if isinstance(v, (str, int)) and not isinstance(v, bool)}
    if env.get("dist_initialized"):
        world, rank = int(env["dist_world_size"]), int(env["dist_rank"])
        local = int(str_env.get("LOCAL_RANK", rank))
        return "initialized", world, rank, local, int(str_env.get("NODE_RANK", 0)), None
    cluster: ClusterEnvironment | None = given
    name = "custom" if given is not None else "local"
    if cluster is None:
        if TorchElasticEnvironment.detect(str_env):
            cluster, name = TorchElasticEnvironment(str_env), "torchelastic"
        elif SLURMEnvironment.detect(str_env):
            cluster, name = SLURMEnvironment(str_env), "slurm"
        elif "LOCAL_RANK" in str_env and "WORLD_SIZE" in str_env:
            cluster, name = LightningEnvironment(str_env), "torchbolt"
    if cluster is None:
        return "local", 1, 0, 0, int(str_env.get("NODE_RANK", 0)), None
    local_world = str_env.get("LOCAL_WORLD_SIZE", str_env.get("SLURM_NTASKS_PER_NODE"))
    return (name, cluster.world_size(), cluster.global_rank(), cluster.local_rank(), cluster.node_rank(),
            int(local_world) if local_world and local_world.isdigit() else None)


# ------------------------------------------------------------------------------------------------------------
# The one entry point
# ------------------------------------------------------------------------------------------------------------
def resolve_plan(
    accelerator: Any = "auto",
    devices: Any = "auto",
    strategy: Any = "auto",
    precision: Any = None,
    num_nodes: Any = 1,
    env: Mapping[str, Any] | None = None,
    plugins: Any = None,
    sync_batchnorm: bool = False,
    amp_backend: Any = None,
    emit_warnings: bool = True,
) -> HardwarePlan:
    """Resolve the Trainer's hardware arguments into a HardwarePlan, or raise an error naming the fix.

    `env` is what `probe_environment()` returns (machine and process-layout facts); tests pass their own.
    Warnings (legacy precision spellings, the CPU '16-mixed' rule, `amp_backend`) are collected on the plan
    and also issued when `emit_warnings` is set.
    """
    env = probe_environment() if env is None else dict(env)
    notes: list[str] = []
    found = _sort_plugins(plugins)

    acc, acc_obj = _resolve_accelerator(accelerator, env)

    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 1:
        raise TrainerArgumentError(
            f"`num_nodes` must be a positive integer, but got {num_nodes!r}: Trainer(num_nodes={num_nodes!r}) "
            "needs >= 1."
        )

    cluster, world, rank, local_rank, node_rank, local_world = _layout(env, found.get("ClusterEnvironment"))
    external = cluster != "local"
    device_ids = _parse_devices(devices, acc, env, local_world if external else None)
    if not external:
        # NODE_RANK set by hand (one command per machine): ranks of this node follow the earlier nodes'.
        rank = node_rank * len(device_ids)

    # ---- strategy --------------------------------------------------------------------------------------
    strat_obj = None
    options: dict[str, Any] = {}
    if isinstance(strategy, str):
        strat = strategy.lower()
        if strat in REMOVED_STRATEGIES:
            raise TrainerArgumentError(
                f"Trainer(strategy={strategy!r}) was removed in Lightning 2.0; use "
                f"strategy={REMOVED_STRATEGIES[strat]!r} instead."
            )
        if strat in UNAVAILABLE_STRATEGIES:
            raise UnsupportedHardwareError(
                f"Trainer(strategy={strategy!r}) is not available: {UNAVAILABLE_STRATEGIES[strat]}."
            )
        if strat not in STRATEGIES:
            raise TrainerArgumentError(
                f"You selected an invalid strategy name: `strategy={strategy!r}`. It must be one of "
                f"{', '.join(s for s in STRATEGIES if s not in UNAVAILABLE_STRATEGIES)}, or a Strategy object."
            )
        if strat == "auto":
            # A process group the user made themselves with one device asked for is theirs (as Lightning): each
            # process trains on its own; torchmetrics and the user's collectives still use that group.
            mine = external and cluster != "initialized"
            many = len(device_ids) * num_nodes > 1 or (mine and world > 1)
            strat = ("ddp_fork" if env.get("interactive") and not external else "ddp") if many else "single_device"
        options = dict(STRATEGY_NAMES[strat])
        canonical = strat.split("_find_unused")[0]
        canonical = "ddp_fork" if canonical == "ddp_notebook" else canonical
        canonical = "fsdp" if canonical == "fsdp_cpu_offload" else canonical
    else:
        from torchbolt.strategies import Strategy

        if not isinstance(strategy, Strategy):
            raise TrainerArgumentError(
                f"You selected an invalid strategy name: `strategy={strategy!r}`. Pass a strategy name such as 'ddp' "
                "or a torchbolt.strategies.Strategy object."
            )
        strat_obj = strategy
        canonical = strategy.strategy_name
        options = {"start_method": getattr(strategy, "start_method", "popen")} if canonical == "ddp" else {}
        if canonical == "ddp" and options["start_method"] != "popen":
            canonical = {"spawn": "ddp_spawn", "fork": "ddp_fork", "forkserver": "ddp_spawn"}[options["start_method"]]

    if canonical == "single_device":
        if external and world > 1 and cluster != "initialized":
            raise TrainerArgumentError(
                f"This process was started as rank {rank} of {world} by {cluster}, but Trainer(strategy="
                "'single_device') runs one process. Use strategy='ddp' (or 'auto')."
            )
        if len(device_ids) > 1 or num_nodes > 1:
            raise TrainerArgumentError(
                f"Trainer(strategy='single_device') runs one device, but devices={devices!r} and num_nodes={num_nodes} "
                f"ask for {len(device_ids) * num_nodes}. Use strategy='ddp' (or 'auto') for several processes."
            )
    if external and canonical in ("ddp_spawn", "ddp_fork"):
        raise TrainerArgumentError(
            f"Trainer(strategy={strategy!r}) starts its own processes, but this process was already started by "
            f"{cluster} (rank {rank} of {world}). Use strategy='ddp'."
        )
    if external and canonical != "single_device" and world != len(device_ids) * num_nodes:
        raise TrainerArgumentError(
            f"{cluster} started {world} processes (WORLD_SIZE={world}), but the Trainer asks for devices="
            f"{len(device_ids)} x num_nodes={num_nodes} = {len(device_ids) * num_nodes}. Make them agree, e.g. "
            f"Trainer(devices={max(world // num_nodes, 1)}, num_nodes={num_nodes}) or devices='auto'."
        )

    # ---- precision --------------------------------------------------------------------------------------
    if amp_backend is not None:
        notes.append(
            f"Trainer(amp_backend={amp_backend!r}) was removed in Lightning 2.0: torchbolt ignores it and uses "
            "native torch.amp mixed precision (NVIDIA Apex is not used); select it with precision='16-mixed' or "
            "'bf16-mixed' and remove amp_backend."
        )
        if precision is None and str(amp_backend).lower() == "apex":
            precision = "16-mixed"
    plugin = found.get("Precision")
    if plugin is not None:
        if precision is not None:
            raise TrainerArgumentError(
                f"Received both `precision={precision!r}` and `plugins=[{plugin!r}]`. Choose one: the precision flag or "
                "a precision plugin."
            )
        resolved_precision = str(getattr(plugin, "precision", "32-true"))
    else:
        resolved_precision = _resolve_precision(precision, acc, notes)
    if canonical == "fsdp" and resolved_precision == "16-mixed":
        raise UnsupportedHardwareError(
            "Trainer(strategy='fsdp', precision='16-mixed') is not available: float16 loss scaling of sharded "
            "gradients is not implemented in torchbolt. Use precision='bf16-mixed' or '32-true' with FSDP."
        )
    if isinstance(plugin, MixedPrecision) and acc != "cpu" and plugin.device == "cpu":
        notes.append(f"{plugin!r} autocasts on the CPU while the model runs on {acc}; pass MixedPrecision(..., '{acc}').")

    layer_sync = found.get("LayerSync")
    if sync_batchnorm and layer_sync is None:
        layer_sync = TorchSyncBatchNorm()
    if layer_sync is not None and canonical == "fsdp":
        raise UnsupportedHardwareError(
            "Trainer(strategy='fsdp', sync_batchnorm=True) is not available: torchbolt synchronizes batch-norm "
            "layers under strategy='ddp' (all its start methods) only. Use strategy='ddp', or remove sync_batchnorm."
        )
    backend = getattr(strat_obj, "process_group_backend", None)
    if (isinstance(layer_sync, TorchSyncBatchNorm) and acc == "cpu" and len(device_ids) * num_nodes > 1
            and backend is not None and str(backend).lower() not in ("gloo", "mpi")):
        raise UnsupportedHardwareError(
            f"Trainer(sync_batchnorm=True) on CPU synchronizes batch-norm statistics through the process group, but "
            f"process_group_backend={backend!r} cannot communicate CPU tensors. Use process_group_backend='gloo' "
            "(the default on CPU), or remove sync_batchnorm."
        )

    if emit_warnings:
        for note in notes:
            warnings.warn(note, stacklevel=3)
    return HardwarePlan(
        accelerator=acc,
        device_ids=device_ids,
        num_nodes=num_nodes,
        strategy=canonical,
        strategy_options=tuple(sorted(options.items())),
        precision=resolved_precision,
        cluster=cluster,
        global_rank=rank,
        local_rank=local_rank,
        node_rank=node_rank,
        sync_batchnorm=layer_sync is not None,
        accelerator_object=acc_obj,
        strategy_object=strat_obj,
        precision_plugin=plugin,
        checkpoint_io=found.get("CheckpointIO"),
        cluster_environment=found.get("ClusterEnvironment"),
        layer_sync=layer_sync,
        warnings=tuple(notes),
    )


# ------------------------------------------------------------------------------------------------------------
# From plan to objects
# ------------------------------------------------------------------------------------------------------------
def build_strategy(plan: HardwarePlan) -> Any:
    """The strategy (with its accelerator, precision plugin, checkpoint IO and launcher) a plan describes.

    A Strategy object the user passed is completed with what it lacks; otherwise the plan's names pick the
    class. This process's ranks come from the plan.
    """
    import torch

    from torchbolt.accelerators.accelerator import ACCELERATOR_CLASSES
    from torchbolt.plugins.precision import precision_plugin_for
    from torchbolt.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy
    from torchbolt.strategies.parallel import ParallelStrategy

    accelerator = plan.accelerator_object or ACCELERATOR_CLASSES[plan.accelerator]()
    precision = plan.precision_plugin or precision_plugin_for(plan.precision, plan.accelerator)
    devices = accelerator.get_parallel_devices(
        plan.num_devices if plan.accelerator == "cpu" else list(plan.device_ids))
    strategy = plan.strategy_object
    if strategy is None:
        if plan.strategy == "single_device":
            strategy = SingleDeviceStrategy(torch.device(plan.device))
        elif plan.strategy == "fsdp":
            strategy = FSDPStrategy(cpu_offload=bool(plan.option("cpu_offload", False)))
        else:
            strategy = DDPStrategy(start_method=plan.option("start_method", "popen"),
                                   find_unused_parameters=bool(plan.option("find_unused_parameters", False)))
    if strategy.accelerator is None:
        strategy.accelerator = accelerator
    if plan.precision_plugin is not None or type(strategy.precision_plugin) is Precision:
        strategy.precision_plugin = precision
    if plan.checkpoint_io is not None:
        strategy.checkpoint_io = plan.checkpoint_io
    if isinstance(strategy, ParallelStrategy):
        if strategy.parallel_devices == [torch.device("cpu")] or not strategy.parallel_devices:
            strategy.parallel_devices = devices
        strategy.num_nodes = plan.num_nodes
        strategy.cluster_environment = plan.cluster_environment or strategy.cluster_environment
        strategy.set_ranks(plan.global_rank, plan.local_rank, plan.node_rank, plan.world_size)
        if isinstance(strategy, DDPStrategy):
            strategy.layer_sync = plan.layer_sync
        strategy.configure_launcher(plan.num_devices, plan.num_nodes, plan.node_rank, plan.launches_processes)
    return strategy
