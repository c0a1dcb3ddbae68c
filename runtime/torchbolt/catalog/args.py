"""Arguments of Trainer, the built-in callbacks and `self.log`, with types, defaults and allowed values."""

from __future__ import annotations

from .schema import REQUIRED, Arg, CallbackSpec

ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps", "tpu")
_DDP_BASE = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")
STRATEGIES = (
    "auto", *_DDP_BASE,
    *(f"{b}_find_unused_parameters_{v}" for b in _DDP_BASE for v in ("true", "false")),
    "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_2_offload", "deepspeed_stage_3",
    "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme", "fsdp", "fsdp_cpu_offload",
    "single_device", "single_xla", "xla", "xla_debug",
)
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true",
              "transformer-engine", "transformer-engine-float16")
#: Accepted for historical reasons; each maps to a canonical value (warning for "16"/"bf16").
PRECISION_ALIASES = {64: "64-true", "64": "64-true", 32: "32-true", "32": "32-true", 16: "16-mixed",
                     "16": "16-mixed", "bf16": "bf16-mixed"}
PROFILERS = ("simple", "advanced", "pytorch", "xla")
GRADIENT_CLIP_ALGORITHMS = ("norm", "value")
ENTRY_POINTS = ("fit", "validate", "test", "predict")

_LIMIT_DOC = ("How much of the {} data to use per epoch: a float in [0.0, 1.0] is a fraction, an int is a "
              "number of batches.")

TRAINER_ARGS: tuple[Arg, ...] = (
    Arg("accelerator", "Union[str, Accelerator]", "auto",
        "Hardware to run on: 'cpu', 'gpu'/'cuda', 'mps', 'tpu' or 'auto' (picks the best available).",
        ("str", "object"), ACCELERATORS),
    Arg("strategy", "Union[str, Strategy]", "auto",
        "How training is distributed: 'auto', 'ddp', 'ddp_spawn', 'fsdp', 'deepspeed', ... or a Strategy.",
        ("str", "object"), STRATEGIES),
    Arg("devices", "Union[list[int], str, int]", "auto",
        "Devices to use: an int count, -1 for all, a list of indices, a string like '0,1', or 'auto'.",
        ("int", "str", "list"), ("auto", -1, 1, 2, 4, 8), choices_open=True, constraint="-1 or >= 1"),
    Arg("num_nodes", "int", 1, "Number of machines for distributed training.", ("int",), constraint=">= 1"),
    Arg("precision", "Optional[Union[int, str]]", None,
        "Numerical precision: '32-true' (default), '16-mixed', 'bf16-mixed', '16-true', 'bf16-true', "
        "'64-true'.", ("str", "int", "none"), PRECISIONS, effective_default="'32-true'"),
    Arg("logger", "Optional[Union[Logger, Iterable[Logger], bool]]", None,
        "Logger(s) for metrics; True (the default) uses TensorBoardLogger in default_root_dir, False disables.",
        ("bool", "none", "object", "list"), effective_default="True"),
    Arg("callbacks", "Optional[Union[list[Callback], Callback]]", None,
        "Callbacks to add to the defaults (progress bar, model summary, ModelCheckpoint).",
        ("none", "object", "list")),
    Arg("fast_dev_run", "Union[int, bool]", False,
        "Runs n (True = 1) batches of train/val/test/predict to find bugs; no checkpoints, no logging.",
        ("bool", "int"), constraint=">= 0"),
    Arg("max_epochs", "Optional[int]", None,
        "Stop after this many epochs; -1 means no limit. Defaults to 1000 when max_steps is also unset.",
        ("int", "none"), constraint=">= -1", effective_default="1000 (when max_steps is -1)"),
    Arg("min_epochs", "Optional[int]", None, "Train at least this many epochs (overrides early stopping).",
        ("int", "none"), constraint=">= 0"),
    Arg("max_steps", "int", -1, "Stop after this many optimizer steps; -1 means no limit.", ("int",),
        constraint=">= -1"),
    Arg("min_steps", "Optional[int]", None, "Train at least this many optimizer steps.", ("int", "none"),
        constraint=">= 0"),
    Arg("max_time", "Optional[Union[str, timedelta, dict[str, int]]]", None,
        "Stop after this wall time: 'DD:HH:MM:SS', a timedelta or a dict of timedelta arguments.",
        ("str", "timedelta", "dict", "none")),
    Arg("limit_train_batches", "Optional[Union[int, float]]", None, _LIMIT_DOC.format("training"),
        ("int", "float", "none"), constraint="int >= 0 or float in [0.0, 1.0]", effective_default="1.0"),
    Arg("limit_val_batches", "Optional[Union[int, float]]", None, _LIMIT_DOC.format("validation"),
        ("int", "float", "none"), constraint="int >= 0 or float in [0.0, 1.0]", effective_default="1.0"),
    Arg("limit_test_batches", "Optional[Union[int, float]]", None, _LIMIT_DOC.format("test"),
        ("int", "float", "none"), constraint="int >= 0 or float in [0.0, 1.0]", effective_default="1.0"),
    Arg("limit_predict_batches", "Optional[Union[int, float]]", None, _LIMIT_DOC.format("predict"),
        ("int", "float", "none"), constraint="int >= 0 or float in [0.0, 1.0]", effective_default="1.0"),
    Arg("overfit_batches", "Union[int, float]", 0.0,
        "Train and validate on this many (int) or this fraction (float) of training batches.",
        ("int", "float"), constraint="int >= 0 or float in [0.0, 1.0]"),
    Arg("val_check_interval", "Optional[Union[int, float, str, timedelta, dict[str, int]]]", None,
        "How often to validate within an epoch: a float fraction of the epoch or an int number of batches.",
        ("int", "float", "none", "str", "timedelta", "dict"), constraint="int >= 1 or float in (0.0, 1.0]",
        effective_default="1.0"),
    Arg("check_val_every_n_epoch", "Optional[int]", 1,
        "Validate every n training epochs; None validates only by an int val_check_interval.",
        ("int", "none"), constraint=">= 1"),
    Arg("num_sanity_val_steps", "Optional[int]", None,
        "Validation batches run before training to catch bugs; -1 runs all, 0 disables.",
        ("int", "none"), constraint=">= -1", effective_default="2"),
    Arg("log_every_n_steps", "Optional[int]", None, "Send step-level metrics to loggers every n steps.",
        ("int", "none"), constraint=">= 0", effective_default="50"),
    Arg("enable_checkpointing", "Optional[bool]", None,
        "Add a default ModelCheckpoint when none is given.", ("bool", "none"), effective_default="True"),
    Arg("enable_progress_bar", "Optional[bool]", None, "Show the progress bar.", ("bool", "none"),
        effective_default="True"),
    Arg("enable_model_summary", "Optional[bool]", None, "Print the model summary at the start of fit.",
        ("bool", "none"), effective_default="True"),
    Arg("accumulate_grad_batches", "int", 1, "Accumulate gradients over k batches before stepping.",
        ("int",), constraint=">= 1"),
    Arg("gradient_clip_val", "Optional[Union[int, float]]", None,
        "Clip gradients at this value (norm or value, see gradient_clip_algorithm); None disables.",
        ("int", "float", "none"), constraint=">= 0"),
    Arg("gradient_clip_algorithm", "Optional[str]", None, "How to clip gradients: 'norm' (default) or 'value'.",
        ("str", "none"), GRADIENT_CLIP_ALGORITHMS, effective_default="'norm'"),
    Arg("deterministic", "Optional[Union[bool, Literal['warn']]]", None,
        "Use deterministic algorithms (torch.use_deterministic_algorithms); 'warn' only warns.",
        ("bool", "str", "none"), (True, False, "warn")),
    Arg("benchmark", "Optional[bool]", None, "Set torch.backends.cudnn.benchmark.", ("bool", "none")),
    Arg("inference_mode", "bool", True,
        "Use torch.inference_mode() (True) or torch.no_grad() (False) in evaluation.", ("bool",)),
    Arg("use_distributed_sampler", "bool", True,
        "Wrap dataloaders' samplers in a DistributedSampler when distributed.", ("bool",)),
    Arg("profiler", "Optional[Union[Profiler, str]]", None,
        "Profile the hooks: 'simple', 'advanced', 'pytorch' or a Profiler.", ("str", "object", "none"),
        PROFILERS),
    Arg("detect_anomaly", "bool", False, "Enable torch.autograd's anomaly detection.", ("bool",)),
    Arg("barebones", "bool", False,
        "Turn off every feature that costs time per step (logging, progress bar, checkpointing, summary).",
        ("bool",)),
    Arg("plugins", "Optional[Union[Any, list[Any]]]", None,
        "Precision, CheckpointIO, ClusterEnvironment or LayerSync plugins (at most one of each kind), e.g. "
        "MixedPrecision, AsyncCheckpointIO, TorchSyncBatchNorm from torchbolt.plugins.", ("object", "list", "none")),
    Arg("sync_batchnorm", "bool", False, "Synchronize batch-norm statistics across processes.", ("bool",)),
    Arg("reload_dataloaders_every_n_epochs", "int", 0,
        "Request the dataloaders again every n epochs; 0 never reloads.", ("int",), constraint=">= 0"),
    Arg("default_root_dir", "Optional[Union[str, Path]]", None,
        "Folder for logs and checkpoints when no logger or ModelCheckpoint says otherwise.",
        ("str", "path", "none"), effective_default="os.getcwd()"),
    Arg("enable_autolog_hparams", "bool", True, "Log the module's hyper-parameters to the loggers.", ("bool",)),
    Arg("model_registry", "Optional[str]", None, "Model-registry name to upload checkpoints to.",
        ("str", "none")),
)

TRAINER_ARGS_BY_NAME: dict[str, Arg] = {a.name: a for a in TRAINER_ARGS}

# --------------------------------------------------------------------------------------------------
# self.log / self.log_dict
# --------------------------------------------------------------------------------------------------
_LOG_COMMON: tuple[Arg, ...] = (
    Arg("prog_bar", "bool", False, "Show the value in the progress bar.", ("bool",)),
    Arg("logger", "Optional[bool]", None, "Send the value to the loggers (None means True).", ("bool", "none")),
    Arg("on_step", "Optional[bool]", None,
        "Log the value at this step; the default depends on the hook (True in training_step).",
        ("bool", "none")),
    Arg("on_epoch", "Optional[bool]", None,
        "Accumulate and log the epoch-level reduction; the default depends on the hook (True in "
        "validation_step).", ("bool", "none")),
    Arg("reduce_fx", "Union[str, Callable]", "mean", "How step values reduce to the epoch value.",
        ("str", "callable"), ("mean", "sum", "max", "min")),
    Arg("enable_graph", "bool", False, "Keep the autograd graph of the logged tensor.", ("bool",)),
    Arg("sync_dist", "bool", False, "Reduce the value across processes (distributed only).", ("bool",)),
    Arg("sync_dist_group", "Optional[Any]", None, "Process group for sync_dist.", ("object", "none")),
    Arg("add_dataloader_idx", "bool", True,
        "Append '/dataloader_idx_N' to the name when there are several eval dataloaders.", ("bool",)),
    Arg("batch_size", "Optional[int]", None,
        "Batch size used to weight the epoch mean; inferred from the batch when not given.", ("int", "none")),
)
LOG_ARGS: tuple[Arg, ...] = (
    Arg("name", "str", REQUIRED, "The metric's name (key in callback_metrics and the loggers).", ("str",)),
    Arg("value", "Union[Tensor, int, float, Metric]", REQUIRED, "A scalar: a number or a one-element tensor.",
        ("object", "int", "float")),
    *_LOG_COMMON,
    Arg("metric_attribute", "Optional[str]", None, "Attribute name of a torchmetrics Metric on the module.",
        ("str", "none")),
    Arg("rank_zero_only", "bool", False, "Log only on rank 0 (the value is not synchronised).", ("bool",)),
)
LOG_DICT_ARGS: tuple[Arg, ...] = (
    Arg("dictionary", "Mapping[str, Union[Tensor, int, float, Metric]]", REQUIRED,
        "Names and scalar values to log.", ("dict",)),
    *_LOG_COMMON,
    Arg("rank_zero_only", "bool", False, "Log only on rank 0.", ("bool",)),
)

# --------------------------------------------------------------------------------------------------
# Built-in callbacks
# --------------------------------------------------------------------------------------------------
_MODES = ("min", "max")
CALLBACKS: tuple[CallbackSpec, ...] = (
    CallbackSpec("ModelCheckpoint", "torchbolt.callbacks",
                 "Saves checkpoints periodically and keeps the best k by a monitored metric.", (
        Arg("dirpath", "Optional[Union[str, Path]]", None,
            "Folder for the checkpoints; default: <log_dir>/checkpoints.", ("str", "path", "none")),
        Arg("filename", "Optional[str]", None,
            "Name template, e.g. '{epoch}-{val_loss:.2f}'; default '{epoch}-{step}'.", ("str", "none")),
        Arg("monitor", "Optional[str]", None, "Logged metric that ranks checkpoints; None keeps the latest.",
            ("str", "none")),
        Arg("verbose", "bool", False, "Print a line on each save.", ("bool",)),
        Arg("save_last", "Optional[Union[bool, Literal['link']]]", None,
            "Also keep last.ckpt (True) or a symlink to the latest checkpoint ('link').", ("bool", "str", "none"),
            (True, False, "link")),
        Arg("save_top_k", "int", 1, "Keep the k best checkpoints; 0 saves none, -1 keeps all.", ("int",),
            constraint=">= -1"),
        Arg("save_on_exception", "bool", False, "Save a checkpoint when training raises.", ("bool",)),
        Arg("save_weights_only", "bool", False, "Save only the weights (no optimizer or loop state).",
            ("bool",)),
        Arg("mode", "str", "min", "Whether a lower ('min') or higher ('max') monitored value is better.",
            ("str",), _MODES),
        Arg("auto_insert_metric_name", "bool", True, "Write 'name=value' for each '{name}' in filename.",
            ("bool",)),
        Arg("every_n_train_steps", "Optional[int]", None, "Save every n optimizer steps.", ("int", "none"),
            constraint=">= 0"),
        Arg("train_time_interval", "Optional[timedelta]", None, "Save every this much wall time.",
            ("timedelta", "none")),
        Arg("every_n_epochs", "Optional[int]", None, "Save every n epochs.", ("int", "none"), constraint=">= 0"),
        Arg("save_on_train_epoch_end", "Optional[bool]", None,
            "Save at the end of the training epoch (True) or after validation (False).", ("bool", "none")),
        Arg("enable_version_counter", "bool", True, "Append -v1, -v2 to names that already exist.", ("bool",)),
    )),
    CallbackSpec("EarlyStopping", "torchbolt.callbacks",
                 "Stops training when a monitored metric stops improving.", (
        Arg("monitor", "str", REQUIRED, "Logged metric to watch.", ("str",)),
        Arg("min_delta", "float", 0.0, "Smallest change that counts as an improvement.", ("float", "int"),
            constraint=">= 0"),
        Arg("patience", "int", 3, "Checks without improvement before stopping.", ("int",), constraint=">= 0"),
        Arg("verbose", "bool", False, "Print the reason for each decision.", ("bool",)),
        Arg("mode", "str", "min", "Whether the metric should decrease ('min') or increase ('max').", ("str",),
            _MODES),
        Arg("strict", "bool", True, "Raise when the monitored metric was never logged.", ("bool",)),
        Arg("check_finite", "bool", True, "Stop when the metric becomes NaN or infinite.", ("bool",)),
        Arg("stopping_threshold", "Optional[float]", None, "Stop as soon as the metric reaches this value.",
            ("float", "int", "none")),
        Arg("divergence_threshold", "Optional[float]", None,
            "Stop as soon as the metric is worse than this value.", ("float", "int", "none")),
        Arg("check_on_train_epoch_end", "Optional[bool]", None,
            "Check at the end of the training epoch instead of after validation.", ("bool", "none")),
        Arg("log_rank_zero_only", "bool", False, "Print decisions on rank 0 only.", ("bool",)),
    )),
    CallbackSpec("LearningRateMonitor", "torchbolt.callbacks", "Logs the learning rate of each optimizer.", (
        Arg("logging_interval", "Optional[str]", None, "Log every 'step' or every 'epoch'; None follows the "
            "scheduler's interval.", ("str", "none"), ("step", "epoch")),
        Arg("log_momentum", "bool", False, "Also log momentum (or Adam's beta1).", ("bool",)),
        Arg("log_weight_decay", "bool", False, "Also log weight decay.", ("bool",)),
    )),
    CallbackSpec("OnExceptionCheckpoint", "torchbolt.callbacks",
                 "Saves a checkpoint when fit is interrupted by an exception.", (
        Arg("dirpath", "Union[str, Path]", REQUIRED, "Folder for the checkpoint.", ("str", "path")),
        Arg("filename", "str", "on_exception", "File name without extension.", ("str",)),
    )),
    CallbackSpec("GradientAccumulationScheduler", "torchbolt.callbacks",
                 "Changes accumulate_grad_batches by epoch.", (
        Arg("scheduling", "dict[int, int]", REQUIRED, "Epoch (0-based) → accumulation factor from that epoch.",
            ("dict",)),
    )),
    CallbackSpec("ModelSummary", "torchbolt.callbacks", "Prints a table of the model's layers at fit start.", (
        Arg("max_depth", "int", 1, "How deep to list nested modules; -1 lists all, 0 disables.", ("int",),
            constraint=">= -1"),
    )),
    CallbackSpec("Timer", "torchbolt.callbacks", "Tracks time per stage and stops fit after max_time.", (
        Arg("duration", "Optional[Union[str, timedelta, dict[str, int]]]", None,
            "Maximum time, as for Trainer(max_time=...).", ("str", "timedelta", "dict", "none")),
        Arg("interval", "str", "step", "Check the time every 'step' or every 'epoch'.", ("str",),
            ("step", "epoch")),
        Arg("verbose", "bool", True, "Print when the time is up.", ("bool",)),
    )),
    CallbackSpec("TQDMProgressBar", "torchbolt.callbacks", "The terminal progress bar.", (
        Arg("refresh_rate", "int", 1, "Redraw every n batches; 0 disables.", ("int",), constraint=">= 0"),
        Arg("process_position", "int", 0, "Line offset for several bars.", ("int",)),
        Arg("leave", "bool", False, "Keep the finished epoch's bar on screen.", ("bool",)),
    )),
    CallbackSpec("LambdaCallback", "torchbolt.callbacks",
                 "Builds a callback from functions given as keyword arguments named after hooks.", ()),
)
CALLBACKS_BY_NAME: dict[str, CallbackSpec] = {c.name: c for c in CALLBACKS}

#: Names a `monitor=` may use without any `self.log`: ModelCheckpoint adds the loop counters to the
#: metrics it ranks by.
ALWAYS_MONITORABLE: tuple[str, ...] = ("epoch", "step")

#: Logger constructors (for completion and validation).
LOGGERS: tuple[CallbackSpec, ...] = (
    CallbackSpec("TensorBoardLogger", "torchbolt.loggers", "Writes TensorBoard event files.", (
        Arg("save_dir", "Union[str, Path]", REQUIRED, "Root folder.", ("str", "path")),
        Arg("name", "Optional[str]", "lightning_logs", "Experiment name (sub-folder).", ("str", "none")),
        Arg("version", "Optional[Union[int, str]]", None, "Version; default: next free version_N.",
            ("int", "str", "none")),
        Arg("log_graph", "bool", False, "Add the model graph (needs example_input_array).", ("bool",)),
        Arg("default_hp_metric", "bool", True, "Log a placeholder hp_metric with the hyper-parameters.",
            ("bool",)),
        Arg("prefix", "str", "", "Prefix for every metric name.", ("str",)),
        Arg("sub_dir", "Optional[Union[str, Path]]", None, "Sub-folder inside the version folder.",
            ("str", "path", "none")),
    )),
    CallbackSpec("CSVLogger", "torchbolt.loggers", "Writes metrics.csv and hparams.yaml.", (
        Arg("save_dir", "Union[str, Path]", REQUIRED, "Root folder.", ("str", "path")),
        Arg("name", "Optional[str]", "lightning_logs", "Experiment name (sub-folder).", ("str", "none")),
        Arg("version", "Optional[Union[int, str]]", None, "Version; default: next free version_N.",
            ("int", "str", "none")),
        Arg("prefix", "str", "", "Prefix for every metric name.", ("str",)),
        Arg("flush_logs_every_n_steps", "int", 100, "Write the CSV every n logging calls.", ("int",)),
    )),
)

#: Keys of a scheduler config dict returned from configure_optimizers.
LR_SCHEDULER_CONFIG_KEYS: tuple[Arg, ...] = (
    Arg("scheduler", "LRScheduler", REQUIRED, "The scheduler.", ("object",)),
    Arg("interval", "str", "epoch", "Step the scheduler every 'epoch' or every 'step'.", ("str",),
        ("epoch", "step")),
    Arg("frequency", "int", 1, "Step every n intervals.", ("int",), constraint=">= 1"),
    Arg("monitor", "Optional[str]", None, "Metric for ReduceLROnPlateau.", ("str", "none")),
    Arg("strict", "bool", True, "Raise when the monitored metric is missing (else warn).", ("bool",)),
    Arg("name", "Optional[str]", None, "Name used by LearningRateMonitor.", ("str", "none")),
)
