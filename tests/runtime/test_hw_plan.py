"""resolve_plan as a table: (accelerator, devices, strategy, precision, num_nodes, plugins, environment) -> plan
or error. The environments are described, not probed, so the table is the same on every machine."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from torchbolt.accelerators import CPUAccelerator, CUDAAccelerator
from torchbolt.catalog import PLUGIN_CLASSES, TRAINER_ARGS_BY_NAME
from torchbolt.plugins import (
    AsyncCheckpointIO,
    DoublePrecision,
    HalfPrecision,
    LightningEnvironment,
    MixedPrecision,
    Precision,
    TorchCheckpointIO,
    TorchSyncBatchNorm,
)
from torchbolt.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy
from torchbolt.trainer.hardware import HardwarePlan, resolve_plan
from torchbolt.utilities.exceptions import (
    MisconfigurationException,
    TrainerArgumentError,
    UnsupportedHardwareError,
)

CPU = {"cpu_count": 2, "torch_version": "2.13.0+cpu", "cuda_build": ""}
GPU2 = {"cpu_count": 16, "torch_version": "2.13.0", "cuda_build": "12.8", "cuda_device_count": 2}
MPS = {"cpu_count": 8, "torch_version": "2.13.0", "mps_available": True}
TORCHRUN2 = {**CPU, "RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "0",
             "TORCHELASTIC_RUN_ID": "x", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
SLURM4 = {**GPU2, "SLURM_NTASKS": "4", "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
          "SLURM_JOB_NAME": "train", "SLURM_NODELIST": "node[07-08]", "SLURM_NTASKS_PER_NODE": "2"}
CHILD = {**CPU, "RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "NODE_RANK": "0", "MASTER_PORT": "1234"}
INITIALIZED = {**CPU, "dist_initialized": True, "dist_world_size": 2, "dist_rank": 1, "LOCAL_RANK": "1"}
NODE1 = {**CPU, "NODE_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1234"}

POPEN = (("start_method", "popen"),)

_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # name, kwargs, env, expected plan fields
    ("default", {}, CPU, {"accelerator": "cpu", "device_ids": (0,), "strategy": "single_device", "precision": "32-true"}),
    ("cpu-1", {"accelerator": "cpu", "devices": 1}, CPU, {"device_ids": (0,), "strategy": "single_device"}),
    ("upper-CPU-str-devices", {"accelerator": "CPU", "devices": "1"}, CPU, {"device_ids": (0,)}),
    ("cpu-2-auto->ddp", {"accelerator": "cpu", "devices": 2}, CPU,
     {"device_ids": (0, 1), "strategy": "ddp", "strategy_options": POPEN, "cluster": "local"}),
    ("cpu-'2'", {"devices": "2"}, CPU, {"device_ids": (0, 1), "strategy": "ddp"}),
    ("ddp-explicit", {"devices": 2, "strategy": "ddp"}, CPU, {"strategy": "ddp"}),
    ("ddp-1-device", {"devices": 1, "strategy": "ddp"}, CPU, {"strategy": "ddp", "device_ids": (0,)}),
    ("ddp_spawn", {"devices": 2, "strategy": "ddp_spawn"}, CPU,
     {"strategy": "ddp_spawn", "strategy_options": (("start_method", "spawn"),)}),
    ("ddp_notebook->fork", {"devices": 2, "strategy": "ddp_notebook"}, CPU,
     {"strategy": "ddp_fork", "strategy_options": (("start_method", "fork"),)}),
    ("find-unused-true", {"devices": 2, "strategy": "ddp_find_unused_parameters_true"}, CPU,
     {"strategy": "ddp", "strategy_options": (("find_unused_parameters", True), ("start_method", "popen"))}),
    ("spawn-find-unused-false", {"devices": 2, "strategy": "ddp_spawn_find_unused_parameters_false"}, CPU,
     {"strategy": "ddp_spawn"}),
    ("fsdp-cpu", {"devices": 2, "strategy": "fsdp"}, CPU, {"strategy": "fsdp"}),
    ("fsdp_cpu_offload", {"devices": 2, "strategy": "fsdp_cpu_offload"}, CPU,
     {"strategy": "fsdp", "strategy_options": (("cpu_offload", True),)}),
    ("interactive-auto->fork", {"devices": 2}, {**CPU, "interactive": True}, {"strategy": "ddp_fork"}),
    ("nodes-2", {"num_nodes": 2}, CPU, {"strategy": "ddp", "num_nodes": 2, "global_rank": 0}),
    ("nodes-2-node-rank-1", {"num_nodes": 2}, NODE1, {"node_rank": 1, "global_rank": 1, "cluster": "local"}),
    ("auto-on-gpu", {}, GPU2, {"accelerator": "cuda", "device_ids": (0, 1), "strategy": "ddp"}),
    ("gpu-alias", {"accelerator": "gpu", "devices": 1}, GPU2, {"accelerator": "cuda", "device_ids": (0,)}),
    ("cuda-list", {"accelerator": "cuda", "devices": [1]}, GPU2, {"device_ids": (1,), "strategy": "single_device"}),
    ("cuda-'0,1'", {"accelerator": "cuda", "devices": "0,1"}, GPU2, {"device_ids": (0, 1), "strategy": "ddp"}),
    ("cuda--1", {"accelerator": "cuda", "devices": -1}, GPU2, {"device_ids": (0, 1)}),
    ("cuda-'-1'", {"accelerator": "cuda", "devices": "-1"}, GPU2, {"device_ids": (0, 1)}),
    ("cuda-16-mixed-stays", {"accelerator": "cuda", "devices": 1, "precision": "16-mixed"}, GPU2,
     {"precision": "16-mixed"}),
    ("mps-auto", {}, MPS, {"accelerator": "mps", "device_ids": (0,)}),
    ("gpu-alias-mps", {"accelerator": "gpu"}, MPS, {"accelerator": "mps"}),
    ("accelerator-object", {"accelerator": CPUAccelerator()}, CPU, {"accelerator": "cpu"}),
    ("strategy-object", {"strategy": DDPStrategy(start_method="spawn"), "devices": 2}, CPU, {"strategy": "ddp_spawn"}),
    ("single-device-object", {"strategy": SingleDeviceStrategy()}, CPU, {"strategy": "single_device"}),
    ("fsdp-object", {"strategy": FSDPStrategy(), "devices": 2}, CPU, {"strategy": "fsdp"}),
    ("precision-None", {"precision": None}, CPU, {"precision": "32-true"}),
    ("precision-32", {"precision": 32}, CPU, {"precision": "32-true"}),
    ("precision-'32'", {"precision": "32"}, CPU, {"precision": "32-true"}),
    ("precision-64", {"precision": 64}, CPU, {"precision": "64-true"}),
    ("precision-64-true", {"precision": "64-true"}, CPU, {"precision": "64-true"}),
    ("precision-bf16-mixed", {"precision": "bf16-mixed"}, CPU, {"precision": "bf16-mixed"}),
    ("precision-bf16-true", {"precision": "bf16-true"}, CPU, {"precision": "bf16-true"}),
    ("precision-16-true", {"precision": "16-true"}, CPU, {"precision": "16-true"}),
    ("plugin-mixed-16-on-cpu", {"plugins": [MixedPrecision("16-mixed", "cpu")]}, CPU, {"precision": "16-mixed"}),
    ("plugin-half", {"plugins": HalfPrecision("bf16-true")}, CPU, {"precision": "bf16-true"}),
    ("plugin-double", {"plugins": [DoublePrecision()]}, CPU, {"precision": "64-true"}),
    ("sync-batchnorm", {"accelerator": "cuda", "devices": 2, "sync_batchnorm": True}, GPU2, {"sync_batchnorm": True}),
    ("sync-batchnorm-one-cpu", {"sync_batchnorm": True}, CPU, {"sync_batchnorm": True}),
    ("sync-batchnorm-cpu-ddp", {"devices": 2, "sync_batchnorm": True}, CPU, {"sync_batchnorm": True, "strategy": "ddp"}),
    ("sync-batchnorm-cpu-gloo", {"devices": 2, "strategy": DDPStrategy(process_group_backend="gloo"),
                                 "plugins": [TorchSyncBatchNorm()]}, CPU, {"sync_batchnorm": True}),
    ("torchrun-auto", {}, TORCHRUN2,
     {"cluster": "torchelastic", "global_rank": 1, "local_rank": 1, "device_ids": (0, 1), "strategy": "ddp"}),
    ("torchrun-devices-2", {"devices": 2, "strategy": "ddp"}, TORCHRUN2, {"cluster": "torchelastic"}),
    ("slurm", {"accelerator": "gpu", "devices": 2, "num_nodes": 2}, SLURM4,
     {"cluster": "slurm", "global_rank": 3, "local_rank": 1, "node_rank": 1}),
    ("launcher-child", {"devices": 2}, CHILD, {"cluster": "torchbolt", "global_rank": 1, "local_rank": 1}),
    ("initialized-group", {"devices": 2}, INITIALIZED, {"cluster": "initialized", "global_rank": 1}),
    # the user's own process group with one device per process: each process runs alone (as Lightning)
    ("initialized-group-auto", {}, INITIALIZED,
     {"cluster": "initialized", "global_rank": 1, "strategy": "single_device"}),
]


@pytest.mark.parametrize(("kwargs", "env", "expected"), [c[1:] for c in _CASES], ids=[c[0] for c in _CASES])
def test_plan_table(kwargs: dict[str, Any], env: dict[str, Any], expected: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no case in this table may warn
        plan = resolve_plan(env=env, **kwargs)
    for field, value in expected.items():
        assert getattr(plan, field) == value, (field, plan)


_BAD: list[tuple[str, dict[str, Any], dict[str, Any], type[Exception], str]] = [
    ("accelerator-typo", {"accelerator": "gpux"}, CPU, TrainerArgumentError,
     "invalid accelerator name: `accelerator='gpux'`. Available names are: auto, cpu, cuda, gpu, mps."),
    ("accelerator-int", {"accelerator": 1}, CPU, TrainerArgumentError, "invalid accelerator name: `accelerator=1`"),
    ("tpu", {"accelerator": "tpu"}, CPU, UnsupportedHardwareError, "torch_xla.*this machine has: cpu \\(2 cores\\)"),
    ("hpu", {"accelerator": "hpu"}, CPU, UnsupportedHardwareError, "lightning-habana"),
    ("ipu", {"accelerator": "ipu"}, GPU2, UnsupportedHardwareError, "Graphcore.*cuda x2"),
    ("cuda-missing", {"accelerator": "cuda"}, CPU, UnsupportedHardwareError, "CUDA is not available.*CPU-only build"),
    ("gpu-missing", {"accelerator": "gpu"}, CPU, UnsupportedHardwareError, "found no GPU"),
    ("mps-missing", {"accelerator": "mps"}, CPU, UnsupportedHardwareError, "MPS"),
    ("cuda-object-missing", {"accelerator": CUDAAccelerator()}, CPU, UnsupportedHardwareError, "CUDAAccelerator"),
    ("devices-0", {"devices": 0}, CPU, MisconfigurationException,
     "`Trainer\\(devices=0\\)` value is not a valid input using cpu accelerator."),
    ("devices-'0'", {"devices": "0"}, CPU, MisconfigurationException, "devices='0'"),
    ("devices-[]", {"devices": []}, CPU, MisconfigurationException, "devices=\\[\\]"),
    ("cpu-devices--1", {"devices": -1}, CPU, TypeError, "`devices` selected with `CPUAccelerator` should be an int > 0"),
    ("cpu-devices-list", {"devices": [0, 1]}, CPU, TypeError, "should be an int > 0"),
    ("cpu-devices-'0,1'", {"devices": "0,1"}, CPU, TypeError, "should be an int > 0"),
    ("devices-float", {"devices": 2.5}, CPU, TypeError, "has type float"),
    ("cuda-too-many", {"accelerator": "cuda", "devices": 3}, GPU2, MisconfigurationException,
     "You requested cuda: \\[0, 1, 2\\]\n But your machine only has: \\[0, 1\\]"),
    ("cuda-bad-index", {"accelerator": "cuda", "devices": [5]}, GPU2, MisconfigurationException, "only has"),
    ("cuda-duplicate", {"accelerator": "cuda", "devices": [0, 0]}, GPU2, TrainerArgumentError, "twice"),
    ("strategy-removed", {"strategy": "dp"}, CPU, TrainerArgumentError, "removed in Lightning 2.0; use strategy='ddp'"),
    ("strategy-typo", {"strategy": "ddpp"}, CPU, TrainerArgumentError, "invalid strategy name"),
    ("strategy-object-wrong", {"strategy": object()}, CPU, TrainerArgumentError, "Strategy object"),
    ("deepspeed", {"strategy": "deepspeed_stage_2"}, CPU, UnsupportedHardwareError, "DeepSpeed is not part"),
    ("xla", {"strategy": "xla"}, CPU, UnsupportedHardwareError, "torch_xla"),
    ("single-device-2", {"devices": 2, "strategy": "single_device"}, CPU, TrainerArgumentError, "runs one device"),
    ("single-device-under-torchrun", {"strategy": "single_device"}, TORCHRUN2, TrainerArgumentError, "rank 1 of 2"),
    ("spawn-under-torchrun", {"strategy": "ddp_spawn"}, TORCHRUN2, TrainerArgumentError, "already started"),
    ("torchrun-mismatch", {"devices": 3}, TORCHRUN2, TrainerArgumentError, "WORLD_SIZE=2.*= 3"),
    ("num-nodes-0", {"num_nodes": 0}, CPU, TrainerArgumentError, "`num_nodes` must be a positive integer, but got 0"),
    ("num-nodes-str", {"num_nodes": "2"}, CPU, TrainerArgumentError, "positive integer"),
    ("precision-fp16", {"precision": "fp16"}, CPU, TrainerArgumentError,
     "Precision 'fp16' is invalid. Allowed precision values"),
    ("precision-bool", {"precision": True}, CPU, TrainerArgumentError, "is invalid"),
    ("transformer-engine", {"precision": "transformer-engine"}, GPU2, UnsupportedHardwareError,
     "Transformer Engine.*not part of torchbolt"),
    ("bitsandbytes", {"precision": "bitsandbytes"}, GPU2, UnsupportedHardwareError, "bitsandbytes"),
    ("fsdp-16-mixed", {"strategy": "fsdp", "accelerator": "cuda", "precision": "16-mixed"}, GPU2,
     UnsupportedHardwareError, "bf16-mixed"),
    ("plugin-and-flag", {"precision": "bf16-mixed", "plugins": [Precision()]}, CPU, TrainerArgumentError,
     "Received both `precision='bf16-mixed'` and `plugins="),
    ("two-precision-plugins", {"plugins": [Precision(), DoublePrecision()]}, CPU, TrainerArgumentError,
     "multiple values for Precision plugins"),
    ("two-checkpoint-io", {"plugins": [TorchCheckpointIO(), AsyncCheckpointIO()]}, CPU, TrainerArgumentError,
     "CheckpointIO"),
    ("two-layer-syncs", {"plugins": [TorchSyncBatchNorm(), TorchSyncBatchNorm()]}, CPU, TrainerArgumentError,
     "LayerSync"),
    ("not-a-plugin", {"plugins": ["apex"]}, CPU, TrainerArgumentError, "str is not a plugin"),
    ("sync-batchnorm-cpu-nccl", {"devices": 2, "strategy": DDPStrategy(process_group_backend="nccl"),
                                 "sync_batchnorm": True}, CPU, UnsupportedHardwareError,
     "process_group_backend='nccl' cannot communicate CPU tensors. Use process_group_backend='gloo'"),
    ("sync-batchnorm-fsdp", {"devices": 2, "strategy": "fsdp", "sync_batchnorm": True}, CPU, UnsupportedHardwareError,
     "strategy='fsdp', sync_batchnorm=True.*Use strategy='ddp'"),
]


@pytest.mark.parametrize(("kwargs", "env", "error", "needle"), [c[1:] for c in _BAD], ids=[c[0] for c in _BAD])
def test_plan_errors(kwargs: dict[str, Any], env: dict[str, Any], error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle):
        resolve_plan(env=env, **kwargs)


def test_table_size() -> None:
    assert len(_CASES) + len(_BAD) >= 40


@pytest.mark.parametrize(("kwargs", "precision", "needle"), [
    ({"precision": 16}, "bf16-mixed", "historical"),  # 16 -> 16-mixed (warns) -> CPU rule (warns)
    ({"precision": "16"}, "bf16-mixed", "historical"),
    ({"precision": "bf16"}, "bf16-mixed", "`precision=bf16` is supported for historical reasons"),
    ({"precision": "16-mixed"}, "bf16-mixed", "AMP with float16 is not supported on CPU"),
    ({"amp_backend": "apex", "precision": 16}, "bf16-mixed", "native torch.amp mixed precision"),
    ({"amp_backend": "native"}, "32-true", "NVIDIA Apex is not used"),
])
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_plan_warnings(kwargs: dict[str, Any], precision: str, needle: str) -> None:
    with pytest.warns(UserWarning, match=needle):
        plan = resolve_plan(env=CPU, **kwargs)
    assert plan.precision == precision
    assert plan.warnings  # also collected on the plan, for the run summary


def test_amp_backend_apex_alone_selects_native_fp16_on_gpu() -> None:
    with pytest.warns(UserWarning, match="Apex is not used"):
        assert resolve_plan(env=GPU2, accelerator="cuda", devices=1, amp_backend="apex").precision == "16-mixed"


def test_plugins_are_carried_on_the_plan() -> None:
    io, env_plugin = AsyncCheckpointIO(), LightningEnvironment({})
    plan = resolve_plan(env=GPU2, accelerator="cuda", devices=1, plugins=[io, env_plugin, TorchSyncBatchNorm()])
    assert plan.checkpoint_io is io and plan.cluster_environment is env_plugin
    assert isinstance(plan.layer_sync, TorchSyncBatchNorm) and plan.sync_batchnorm


def test_plan_is_frozen_and_comparable() -> None:
    plan = resolve_plan(env=CPU, devices=2)
    with pytest.raises(AttributeError):
        plan.strategy = "fsdp"  # type: ignore[misc]
    assert plan == resolve_plan(env=CPU, devices="2")
    assert plan.world_size == 2 and plan.launches_processes and plan.device == "cpu"
    assert HardwarePlan().world_size == 1


def test_catalog_lists_the_plugins_for_the_language_server() -> None:
    assert set(PLUGIN_CLASSES) >= {"MixedPrecision", "AsyncCheckpointIO", "TorchSyncBatchNorm", "SLURMEnvironment"}
    # Objects, not strings: the names are documented, not offered as string values to complete.
    assert "AsyncCheckpointIO" in TRAINER_ARGS_BY_NAME["plugins"].doc and not TRAINER_ARGS_BY_NAME["plugins"].choices
    import torchbolt.plugins as plugins

    assert all(hasattr(plugins, name) for name in PLUGIN_CLASSES)


def test_spawned_strategies_get_a_torch_multiprocessing_launcher() -> None:
    from torchbolt.strategies.launchers import SpawnLauncher
    from torchbolt.trainer.hardware import build_strategy

    for name, method in (("ddp_spawn", "spawn"), ("ddp_fork", "fork"), ("ddp_notebook", "fork")):
        strategy = build_strategy(resolve_plan(env=CPU, devices=2, strategy=name))
        assert isinstance(strategy.launcher, SpawnLauncher)
        assert (strategy.launcher.start_method, strategy.launcher.num_processes) == (method, 2)
        assert strategy.launcher.strategy is strategy and not strategy.launcher.spawned
    # One process needs no launching: ddp_spawn with devices=1 builds without a launcher.
    assert build_strategy(resolve_plan(env=CPU, devices=1, strategy="ddp_spawn")).launcher is None
    assert build_strategy(resolve_plan(env=CPU, devices=1, strategy="ddp_spawn")).world_size == 1
