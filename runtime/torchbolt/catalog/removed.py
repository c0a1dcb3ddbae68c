"""Lightning 1.x names that 2.x removed, with their replacements (reference §4 and Appendix B)."""

from __future__ import annotations

from .schema import Member, Removed

REMOVED_TRAINER_ARGS: dict[str, Removed] = {r.name: r for r in (
    # (gpus/tpu_cores of 0 or None meant the CPU: the lint fix reads the value, see torchbolt_lsp.lint.safety)
    Removed("gpus", "use accelerator='gpu', devices=N (gpus=0 or None meant accelerator='cpu')",
            rewrite="accelerator=\"gpu\", devices={value}"),
    Removed("tpu_cores", "use accelerator='tpu', devices=N (tpu_cores=0 or None meant accelerator='cpu')",
            rewrite="accelerator=\"tpu\", devices={value}"),
    Removed("ipus", "IPU support moved out of Lightning (lightning-graphcore); use accelerator/devices"),
    Removed("num_processes", "use accelerator='cpu', devices=N", rewrite="accelerator=\"cpu\", devices={value}"),
    Removed("auto_select_gpus", "remove it: devices='auto' (the default) picks available devices", rewrite=""),
    Removed("resume_from_checkpoint", "pass the path to fit instead: trainer.fit(model, ckpt_path=...)"),
    Removed("amp_backend", "remove it: native AMP is selected with precision='16-mixed'", rewrite=""),
    Removed("amp_level", "remove it: native AMP is selected with precision='16-mixed'", rewrite=""),
    Removed("auto_lr_find", "use Tuner(trainer).lr_find(model) or the LearningRateFinder callback"),
    Removed("auto_scale_batch_size",
            "use Tuner(trainer).scale_batch_size(model) or the BatchSizeFinder callback"),
    Removed("replace_sampler_ddp", "renamed to use_distributed_sampler",
            rewrite="use_distributed_sampler={value}"),
    Removed("track_grad_norm",
            "override on_before_optimizer_step and log grad_norm(self, norm_type=2) with self.log_dict"),
    Removed("move_metrics_to_cpu", "remove it (metrics are moved as needed)", rewrite=""),
    Removed("multiple_trainloader_mode", "wrap the loaders in CombinedLoader(iterables, mode=...)"),
    Removed("checkpoint_callback", "use enable_checkpointing=True/False, and pass a ModelCheckpoint in "
            "callbacks=[...]", "1.7", rewrite="enable_checkpointing={value}"),
    Removed("progress_bar_refresh_rate", "pass callbacks=[TQDMProgressBar(refresh_rate=N)]", "1.7"),
    Removed("weights_summary", "pass callbacks=[ModelSummary(max_depth=N)] or enable_model_summary", "1.7"),
    Removed("terminate_on_nan", "use detect_anomaly=True", "1.7", rewrite="detect_anomaly={value}"),
    Removed("flush_logs_every_n_steps", "pass it to the logger (CSVLogger(flush_logs_every_n_steps=...))", "1.7"),
    Removed("log_gpu_memory", "use the DeviceStatsMonitor callback", "1.7"),
    Removed("stochastic_weight_avg", "use the StochasticWeightAveraging callback", "1.7"),
    Removed("process_position", "pass it to TQDMProgressBar(process_position=...)", "1.7"),
    Removed("prepare_data_per_node", "set self.prepare_data_per_node on the LightningModule/DataModule", "1.7"),
    Removed("weights_save_path", "use ModelCheckpoint(dirpath=...)", "1.7"),
    Removed("distributed_backend", "renamed to strategy", "1.7", rewrite="strategy={value}"),
    Removed("reload_dataloaders_every_epoch", "use reload_dataloaders_every_n_epochs=1", "1.7",
            rewrite="reload_dataloaders_every_n_epochs=1"),
    Removed("truncated_bptt_steps", "use manual optimization", "1.7"),
)}

#: Precision values that 2.x still accepts but spells differently (the diagnostic offers the new spelling).
PRECISION_REWRITES: dict[object, str] = {16: "16-mixed", "16": "16-mixed", "bf16": "bf16-mixed",
                                         32: "32-true", "32": "32-true", 64: "64-true", "64": "64-true"}

#: Strategy names removed in 2.0 and their replacement.
REMOVED_STRATEGIES: dict[str, str] = {
    "dp": "ddp", "ddp2": "ddp", "ddp_sharded": "fsdp", "ddp_sharded_spawn": "fsdp", "fsdp_native": "fsdp",
    "fsdp_native_full_shard_offload": "fsdp_cpu_offload", "tpu_spawn": "xla", "tpu_spawn_debug": "xla_debug",
    "horovod": "ddp", "colossalai": "fsdp", "ddp_spawn_sharded": "fsdp", "single_tpu": "single_xla",
}

REMOVED_HOOKS: dict[str, Removed] = {r.name: r for r in (
    Removed("training_epoch_end", "use on_train_epoch_end(self) and collect step outputs on self",
            owner="module"),
    Removed("validation_epoch_end", "use on_validation_epoch_end(self) and collect step outputs on self",
            owner="module"),
    Removed("test_epoch_end", "use on_test_epoch_end(self) and collect step outputs on self", owner="module"),
    Removed("training_step_end", "move the logic to on_train_batch_end", owner="module"),
    Removed("validation_step_end", "move the logic to on_validation_batch_end", owner="module"),
    Removed("test_step_end", "move the logic to on_test_batch_end", owner="module"),
    Removed("on_epoch_start", "use on_train_epoch_start / on_validation_epoch_start / on_test_epoch_start",
            "1.8", owner="module"),
    Removed("on_epoch_end", "use on_train_epoch_end / on_validation_epoch_end / on_test_epoch_end", "1.8",
            owner="module"),
    Removed("on_batch_start", "use on_train_batch_start", "1.8", owner="module"),
    Removed("on_batch_end", "use on_train_batch_end", "1.8", owner="module"),
    Removed("on_pretrain_routine_start", "use on_fit_start", "1.8", owner="module"),
    Removed("on_pretrain_routine_end", "use on_fit_start", "1.8", owner="module"),
    Removed("on_hpc_save", "use on_save_checkpoint", "1.8", owner="module"),
    Removed("on_hpc_load", "use on_load_checkpoint", "1.8", owner="module"),
    Removed("on_post_move_to_device", "remove it: parameter tying is automatic", "1.8", owner="module"),
    Removed("tbptt_split_batch", "use manual optimization", owner="module"),
    Removed("on_train_dataloader", "use train_dataloader", "1.7", owner="module"),
    Removed("on_val_dataloader", "use val_dataloader", "1.7", owner="module"),
    Removed("on_test_dataloader", "use test_dataloader", "1.7", owner="module"),
    Removed("on_predict_dataloader", "use predict_dataloader", "1.7", owner="module"),
    Removed("get_progress_bar_dict", "override ProgressBar.get_metrics", "1.7", owner="module"),
    Removed("on_init_start", "remove it", "1.8", owner="callback"),
    Removed("on_init_end", "remove it", "1.8", owner="callback"),
    Removed("on_keyboard_interrupt", "use on_exception", "1.8", owner="callback"),
    Removed("on_configure_sharded_model", "use setup", "1.8", owner="callback"),
    Removed("on_before_accelerator_backend_setup", "use setup", "1.8", owner="callback"),
)}

#: Hook parameters that 2.x dropped (the old signature fails with TypeError at call time).
REMOVED_HOOK_PARAMS: dict[str, tuple[str, ...]] = {
    "optimizer_step": ("optimizer_idx", "on_tpu", "using_lbfgs", "using_native_amp"),
    "optimizer_zero_grad": ("optimizer_idx",),
    "lr_scheduler_step": ("optimizer_idx",),
    "configure_gradient_clipping": ("optimizer_idx",),
    "on_before_optimizer_step": ("optimizer_idx", "opt_idx"),
    "backward": ("optimizer", "optimizer_idx"),
    "training_step": ("optimizer_idx", "hiddens"),
    "toggle_optimizer": ("optimizer_idx",),
    "on_predict_epoch_end": ("results", "outputs"),
    "on_train_epoch_end": ("outputs",),
    "on_validation_epoch_end": ("outputs",),
    "on_test_epoch_end": ("outputs",),
}

#: Members of LightningModule offered after `self.` (besides nn.Module's own).
MODULE_MEMBERS: tuple[Member, ...] = (
    Member("log", "method", "log(name, value, prog_bar=False, logger=None, on_step=None, on_epoch=None, "
           "reduce_fx='mean', enable_graph=False, sync_dist=False, sync_dist_group=None, "
           "add_dataloader_idx=True, batch_size=None, metric_attribute=None, rank_zero_only=False)",
           "Logs a scalar metric to the progress bar, the loggers and callback_metrics."),
    Member("log_dict", "method", "log_dict(dictionary, prog_bar=False, logger=None, on_step=None, "
           "on_epoch=None, reduce_fx='mean', ...)", "Logs several scalar metrics at once."),
    Member("device", "property", "device: torch.device", "The device the module's parameters are on."),
    Member("dtype", "property", "dtype: torch.dtype", "The module's parameter dtype."),
    Member("current_epoch", "property", "current_epoch: int", "The current epoch (0-based), 0 when detached."),
    Member("global_step", "property", "global_step: int", "Number of optimizer steps taken so far."),
    Member("global_rank", "property", "global_rank: int", "Rank of this process among all processes."),
    Member("local_rank", "property", "local_rank: int", "Rank of this process on its node."),
    Member("trainer", "property", "trainer: Trainer", "The Trainer running this module (error if detached)."),
    Member("logger", "property", "logger: Optional[Logger]", "The first logger of the Trainer."),
    Member("loggers", "property", "loggers: list[Logger]", "All loggers of the Trainer."),
    Member("hparams", "property", "hparams: AttributeDict", "Hyper-parameters saved by save_hyperparameters()."),
    Member("hparams_initial", "property", "hparams_initial: AttributeDict",
           "A copy of the hyper-parameters as first saved."),
    Member("save_hyperparameters", "method", "save_hyperparameters(*args, ignore=None, frame=None, logger=True)",
           "Stores __init__ arguments in self.hparams and in checkpoints."),
    Member("automatic_optimization", "attribute", "automatic_optimization: bool",
           "Set to False in __init__ to step optimizers yourself in training_step."),
    Member("strict_loading", "attribute", "strict_loading: bool", "Strictness of load_state_dict on restore."),
    Member("example_input_array", "attribute", "example_input_array: Optional[Any]",
           "Example input used by the model summary and graph logging."),
    Member("optimizers", "method", "optimizers(use_pl_optimizer=True)",
           "The optimizer(s) from configure_optimizers (one optimizer is returned unwrapped)."),
    Member("lr_schedulers", "method", "lr_schedulers()", "The LR scheduler(s), or None."),
    Member("manual_backward", "method", "manual_backward(loss, *args, **kwargs)",
           "Backward pass under manual optimization (runs the backward hooks)."),
    Member("toggle_optimizer", "method", "toggle_optimizer(optimizer)",
           "Freezes the parameters that only other optimizers own."),
    Member("untoggle_optimizer", "method", "untoggle_optimizer(optimizer)", "Undoes toggle_optimizer."),
    Member("toggled_optimizer", "method", "toggled_optimizer(optimizer)",
           "Context manager: toggle on enter, untoggle on exit."),
    Member("clip_gradients", "method", "clip_gradients(optimizer, gradient_clip_val=None, "
           "gradient_clip_algorithm=None)", "Clips gradients by norm or value."),
    Member("all_gather", "method", "all_gather(data, group=None, sync_grads=False)",
           "Gathers tensors from all processes (identity on one process)."),
    Member("print", "method", "print(*args, **kwargs)", "Prints on global rank 0 only."),
    Member("freeze", "method", "freeze()", "Sets requires_grad=False on all parameters and eval mode."),
    Member("unfreeze", "method", "unfreeze()", "Sets requires_grad=True on all parameters and train mode."),
    Member("load_from_checkpoint", "method", "load_from_checkpoint(checkpoint_path, map_location=None, "
           "hparams_file=None, strict=None, **kwargs)", "Class method: builds the module from a checkpoint."),
    Member("to_onnx", "method", "to_onnx(file_path, input_sample=None, **kwargs)", "Exports to ONNX."),
    Member("to_torchscript", "method", "to_torchscript(file_path=None, method='script', example_inputs=None)",
           "Exports to TorchScript."),
)
