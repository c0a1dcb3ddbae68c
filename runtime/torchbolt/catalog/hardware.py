"""Hardware facts beyond the Trainer's allowed values: what plugins may be passed, and which registry
names Lightning knows but torchbolt cannot run (with what is missing), so that the Trainer and the
language server give the same answer."""

from __future__ import annotations

#: `Trainer(plugins=...)` accepts at most one object of each of these kinds (base class names, in
#: `torchbolt.plugins`), mapped to the built-in classes a user is likely to pass.
PLUGIN_KINDS: dict[str, tuple[str, ...]] = {
    "Precision": ("Precision", "MixedPrecision", "HalfPrecision", "DoublePrecision"),
    "CheckpointIO": ("CheckpointIO", "TorchCheckpointIO", "AsyncCheckpointIO"),
    "ClusterEnvironment": ("ClusterEnvironment", "LightningEnvironment", "TorchElasticEnvironment",
                           "SLURMEnvironment"),
    "LayerSync": ("LayerSync", "TorchSyncBatchNorm"),
}
#: Every plugin class name users can pass (for completion of `plugins=[...]`).
PLUGIN_CLASSES: tuple[str, ...] = tuple(name for names in PLUGIN_KINDS.values() for name in names)

#: Accelerator names that need software torchbolt does not ship, and what it is.
UNAVAILABLE_ACCELERATORS: dict[str, str] = {
    "tpu": "TPUs need torch_xla and an XLA strategy, which torchbolt does not include",
    "hpu": "Intel Gaudi (HPU) support lives in the separate lightning-habana package, not in torchbolt",
    "ipu": "Graphcore IPU support was moved out of Lightning (lightning-graphcore) and is not in torchbolt",
}

#: Strategy names Lightning registers that torchbolt cannot run, and why.
UNAVAILABLE_STRATEGIES: dict[str, str] = {
    **{name: "DeepSpeed is not part of torchbolt; use strategy='fsdp' (torch's own sharding)" for name in (
        "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_2_offload", "deepspeed_stage_3",
        "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme")},
    **{name: "XLA (TPU) strategies need torch_xla, which torchbolt does not include" for name in (
        "single_xla", "xla", "xla_debug")},
}

#: Strategy names torchbolt runs, with the options each name implies.
STRATEGY_NAMES: dict[str, dict[str, object]] = {
    "single_device": {},
    "ddp": {"start_method": "popen"},
    "ddp_spawn": {"start_method": "spawn"},
    "ddp_fork": {"start_method": "fork"},
    "ddp_notebook": {"start_method": "fork"},
    **{f"{base}_find_unused_parameters_{flag}": {"start_method": method, "find_unused_parameters": flag == "true"}
       for base, method in (("ddp", "popen"), ("ddp_spawn", "spawn"), ("ddp_fork", "fork"),
                            ("ddp_notebook", "fork"))
       for flag in ("true", "false")},
    "fsdp": {},
    "fsdp_cpu_offload": {"cpu_offload": True},
}

#: Precision values that need a package torchbolt does not ship.
UNAVAILABLE_PRECISIONS: dict[str, str] = {
    "transformer-engine": "NVIDIA Transformer Engine (FP8) is not part of torchbolt",
    "transformer-engine-float16": "NVIDIA Transformer Engine (FP8) is not part of torchbolt",
    "bitsandbytes": "bitsandbytes quantization is not part of torchbolt",
}
