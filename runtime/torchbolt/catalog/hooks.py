"""Hooks of LightningModule, LightningDataModule and Callback, with where `self.log` may be called.

Facts follow Lightning 2.6 (`lightning.pytorch`): names, signatures, when each hook runs, which
entry points call it. The runtime's classes are checked against these records by a test.
"""

from __future__ import annotations

from .schema import Hook, HookPoint, LogRule, Param

F, V, T, P = "fit", "validate", "test", "predict"
ALL = (F, V, T, P)

_BATCH = Param("batch", "Any")
_BATCH_IDX = Param("batch_idx", "int")
_DL_IDX = Param("dataloader_idx", "int", "0")
_OUTPUTS = Param("outputs", "STEP_OUTPUT")
_STAGE = Param("stage", "str")
_OPT = Param("optimizer", "Optimizer")
_CKPT = Param("checkpoint", "dict[str, Any]")
_TRAINER = Param("trainer", '"Trainer"')
_PL_MODULE = Param("pl_module", '"LightningModule"')


def _m(name, params, returns, doc, eps, rank=100, body="pass", only=False, cat="hook"):
    return Hook(name, "module", tuple(params), returns, doc, tuple(eps), rank, body, only, cat)


# --------------------------------------------------------------------------------------------------
# LightningModule: steps, model hooks, data hooks, checkpoint hooks, optimization hooks
# --------------------------------------------------------------------------------------------------
MODULE_HOOKS: tuple[Hook, ...] = (
    _m("training_step", [_BATCH, _BATCH_IDX], "STEP_OUTPUT",
       "Computes the loss of one training batch. Return the loss tensor (or a dict with a 'loss' key); "
       "returning None skips the optimizer step for this batch under automatic optimization.",
       [F], 1,
       "${1:x, y = batch}\n${2:loss = torch.nn.functional.cross_entropy(self(x), y)}\n"
       "self.log(\"${3:train_loss}\", loss, prog_bar=True)\nreturn loss", cat="step"),
    _m("validation_step", [_BATCH, _BATCH_IDX], "STEP_OUTPUT",
       "Evaluates one validation batch in eval mode with gradients off: during the sanity check, the "
       "periodic validation inside fit, and trainer.validate. Log metrics with self.log.",
       [F, V], 2,
       "${1:x, y = batch}\n${2:loss = torch.nn.functional.cross_entropy(self(x), y)}\n"
       "self.log(\"${3:val_loss}\", loss, prog_bar=True)", cat="step"),
    _m("configure_optimizers", [], "OptimizerLRScheduler",
       "Returns the optimizer(s) and optional LR scheduler(s). Called once per fit, after setup and "
       "configure_model.",
       [F], 3, "return torch.optim.Adam(self.parameters(), lr=${1:1e-3})", cat="optimization"),
    _m("test_step", [_BATCH, _BATCH_IDX], "STEP_OUTPUT",
       "Evaluates one test batch in eval mode with gradients off, during trainer.test.", [T], 4,
       "${1:x, y = batch}\n${2:loss = torch.nn.functional.cross_entropy(self(x), y)}\n"
       "self.log(\"${3:test_loss}\", loss)", cat="step"),
    _m("forward", [Param("args", "Any", kind="var_positional"), Param("kwargs", "Any", kind="var_keyword")],
       "Any", "The module's forward pass (plain nn.Module semantics); used by predict_step by default.",
       [], 5, "${1:return self.model(*args, **kwargs)}", cat="step"),
    _m("predict_step", [_BATCH, _BATCH_IDX, _DL_IDX], "Any",
       "Produces the prediction for one batch during trainer.predict. Default: self(batch).", [P], 8,
       "return self(batch)", cat="step"),
    _m("on_train_epoch_end", [], "None",
       "End of each training epoch, after the in-epoch validation.", [F], 6),
    _m("on_validation_epoch_end", [], "None",
       "End of each validation epoch (after all validation batches).", [F, V], 7),
    _m("train_dataloader", [], "TRAIN_DATALOADERS",
       "Returns the training DataLoader(s). Called at the start of fit (and again when "
       "reload_dataloaders_every_n_epochs is set).", [F], 9,
       "return torch.utils.data.DataLoader(${1:self.train_set}, batch_size=${2:32}, shuffle=True)", cat="data"),
    _m("val_dataloader", [], "EVAL_DATALOADERS",
       "Returns the validation DataLoader(s); requested before the sanity check in fit and by validate.",
       [F, V], 10, "return torch.utils.data.DataLoader(${1:self.val_set}, batch_size=${2:32})", cat="data"),
    _m("test_dataloader", [], "EVAL_DATALOADERS", "Returns the test DataLoader(s), for trainer.test.",
       [T], 14, "return torch.utils.data.DataLoader(${1:self.test_set}, batch_size=${2:32})", cat="data"),
    _m("predict_dataloader", [], "EVAL_DATALOADERS",
       "Returns the predict DataLoader(s), for trainer.predict.", [P], 30,
       "return torch.utils.data.DataLoader(${1:self.predict_set}, batch_size=${2:32})", cat="data"),
    _m("setup", [_STAGE], "None",
       "Runs on every process at the start of each entry point, with stage in "
       "'fit'|'validate'|'test'|'predict'; self.device is already the target device.", ALL, 11, cat="data"),
    _m("teardown", [_STAGE], "None", "Runs at the end of every entry point.", ALL, 40, cat="data"),
    _m("prepare_data", [], "None",
       "Downloads or prepares data once per node (local rank 0) before setup; do not assign state here.",
       ALL, 12, only=True, cat="data"),
    _m("on_fit_start", [], "None",
       "Very beginning of fit, after setup, configure_model and configure_optimizers, before the "
       "sanity check.", [F], 20),
    _m("on_fit_end", [], "None", "Very end of fit, after on_train_end and before teardown.", [F], 35),
    _m("on_train_start", [], "None", "After the sanity check, before the first training epoch.", [F], 15),
    _m("on_train_end", [], "None", "After the last training epoch, before loggers are finalized.", [F], 25),
    _m("on_validation_start", [], "None", "Beginning of each validation run.", [F, V], 33),
    _m("on_validation_end", [], "None", "End of each validation run.", [F, V], 34),
    _m("on_test_start", [], "None", "Beginning of testing.", [T], 50),
    _m("on_test_end", [], "None", "End of testing.", [T], 51),
    _m("on_predict_start", [], "None", "Beginning of predicting.", [P], 52),
    _m("on_predict_end", [], "None", "End of predicting.", [P], 53),
    _m("on_train_batch_start", [_BATCH, _BATCH_IDX], "Optional[int]",
       "Before training_step, after the batch was moved to the device. Return -1 to skip the rest of "
       "the epoch.", [F], 16),
    _m("on_train_batch_end", [_OUTPUTS, _BATCH, _BATCH_IDX], "None",
       "After the optimizer step of a training batch; outputs['loss'] is divided by "
       "accumulate_grad_batches.", [F], 17),
    _m("on_validation_batch_start", [_BATCH, _BATCH_IDX, _DL_IDX], "None", "Before validation_step.",
       [F, V], 36),
    _m("on_validation_batch_end", [_OUTPUTS, _BATCH, _BATCH_IDX, _DL_IDX], "None", "After validation_step.",
       [F, V], 37),
    _m("on_test_batch_start", [_BATCH, _BATCH_IDX, _DL_IDX], "None", "Before test_step.", [T], 54),
    _m("on_test_batch_end", [_OUTPUTS, _BATCH, _BATCH_IDX, _DL_IDX], "None", "After test_step.", [T], 55),
    _m("on_predict_batch_start", [_BATCH, _BATCH_IDX, _DL_IDX], "None", "Before predict_step.", [P], 56),
    _m("on_predict_batch_end", [Param("outputs", "Optional[Any]"), _BATCH, _BATCH_IDX, _DL_IDX], "None",
       "After predict_step.", [P], 57),
    _m("on_validation_model_zero_grad", [], "None",
       "In fit, just before the in-training validation loop (not in the sanity check). Default: "
       "self.zero_grad().", [F], 90),
    _m("on_validation_model_eval", [], "None", "Start of the validation loop. Default: eval mode.", [F, V], 91),
    _m("on_validation_model_train", [], "None",
       "End of the validation loop; called only if overridden (otherwise train/eval modes are restored).",
       [F, V], 92, only=True),
    _m("on_test_model_eval", [], "None", "Start of the test loop. Default: eval mode.", [T], 93),
    _m("on_test_model_train", [], "None", "End of the test loop; called only if overridden.", [T], 94, only=True),
    _m("on_predict_model_eval", [], "None", "Start of the predict loop. Default: eval mode.", [P], 95),
    _m("on_train_epoch_start", [], "None", "Start of each training epoch.", [F], 18),
    _m("on_validation_epoch_start", [], "None", "Start of each validation epoch.", [F, V], 38),
    _m("on_test_epoch_start", [], "None", "Start of the test epoch.", [T], 58),
    _m("on_test_epoch_end", [], "None", "End of the test epoch.", [T], 39),
    _m("on_predict_epoch_start", [], "None", "Start of the predict epoch.", [P], 59),
    _m("on_predict_epoch_end", [], "None",
       "End of the predict epoch (2.x passes no outputs; read trainer.predict_loop.predictions).", [P], 60),
    _m("on_before_zero_grad", [_OPT], "None",
       "After training_step and before optimizer_zero_grad (automatic optimization).", [F], 61),
    _m("on_before_backward", [Param("loss", "Tensor")], "None",
       "Before backward; the loss is already divided for gradient accumulation.", [F], 62),
    _m("on_after_backward", [], "None", "After backward, before the optimizer step.", [F], 26),
    _m("on_before_optimizer_step", [_OPT], "None",
       "Before optimizer.step(), after accumulation and before gradient clipping; a good place to log "
       "gradient norms.", [F], 27),
    _m("configure_model", [], "None",
       "Creates layers lazily after setup; called only if overridden and must be idempotent.", ALL, 41,
       only=True, cat="config"),
    _m("configure_sharded_model", [], "None", "Deprecated: use configure_model.", ALL, 200, only=True,
       cat="config"),
    _m("configure_callbacks", [], "Union[Sequence[Callback], Callback]",
       "Returns callbacks that are added to the Trainer's (replacing ones of the same type); called first "
       "in every entry point.", ALL, 42, "return [${1}]", cat="config"),
    _m("transfer_batch_to_device", [_BATCH, Param("device", "torch.device"), Param("dataloader_idx", "int")],
       "Any", "Moves every batch to the device. Default: tensors inside collections are moved.", ALL, 63,
       "return super().transfer_batch_to_device(batch, device, dataloader_idx)", cat="data"),
    _m("on_before_batch_transfer", [_BATCH, Param("dataloader_idx", "int")], "Any",
       "Every batch, before transfer to the device; must return the batch.", ALL, 64, "return batch", cat="data"),
    _m("on_after_batch_transfer", [_BATCH, Param("dataloader_idx", "int")], "Any",
       "Every batch, after transfer to the device; must return the batch.", ALL, 43, "return batch", cat="data"),
    _m("on_save_checkpoint", [_CKPT], "None",
       "Last step of writing a checkpoint; may add keys to the dict.", [F, V, T, P], 44, cat="checkpoint"),
    _m("on_load_checkpoint", [_CKPT], "None",
       "While restoring from a checkpoint (ckpt_path= or load_from_checkpoint), before configure_optimizers.",
       [F, V, T, P], 45, cat="checkpoint"),
    _m("backward", [Param("loss", "Tensor"), Param("args", "Any", kind="var_positional"),
                    Param("kwargs", "Any", kind="var_keyword")], "None",
       "Runs the backward pass. Default: loss.backward().", [F], 70, "loss.backward(*args, **kwargs)",
       cat="optimization"),
    _m("optimizer_step", [Param("epoch", "int"), _BATCH_IDX, Param("optimizer", "Optimizer"),
                          Param("optimizer_closure", "Optional[Callable[[], Any]]", "None")], "None",
       "Steps the optimizer; the closure runs training_step, zero_grad and backward. Not called while "
       "accumulating.", [F], 71, "optimizer.step(closure=optimizer_closure)", cat="optimization"),
    _m("optimizer_zero_grad", [Param("epoch", "int"), _BATCH_IDX, _OPT], "None",
       "Zeroes the gradients. Default: optimizer.zero_grad().", [F], 72, "optimizer.zero_grad()",
       cat="optimization"),
    _m("configure_gradient_clipping", [_OPT, Param("gradient_clip_val", "Optional[Union[int, float]]", "None"),
                                       Param("gradient_clip_algorithm", "Optional[str]", "None")], "None",
       "Before optimizer_step, after on_before_optimizer_step. Default calls clip_gradients with the "
       "Trainer's settings.", [F], 73,
       "self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val, "
       "gradient_clip_algorithm=gradient_clip_algorithm)", cat="optimization"),
    _m("lr_scheduler_step", [Param("scheduler", "LRSchedulerTypeUnion"), Param("metric", "Optional[Any]")], "None",
       "Steps one LR scheduler. Default: scheduler.step() or scheduler.step(metric) for ReduceLROnPlateau.",
       [F], 74, "scheduler.step() if metric is None else scheduler.step(metric)", cat="optimization"),
)

# --------------------------------------------------------------------------------------------------
# LightningDataModule
# --------------------------------------------------------------------------------------------------
_DATAMODULE_NAMES = (
    "prepare_data", "setup", "teardown", "train_dataloader", "val_dataloader", "test_dataloader",
    "predict_dataloader", "transfer_batch_to_device", "on_before_batch_transfer", "on_after_batch_transfer",
)
_DM_RANK = {"setup": 1, "train_dataloader": 2, "val_dataloader": 3, "prepare_data": 4, "test_dataloader": 5,
            "predict_dataloader": 6, "teardown": 7}


def _as_datamodule(h: Hook) -> Hook:
    return Hook(h.name, "datamodule", h.params, h.returns, h.doc, h.entry_points, _DM_RANK.get(h.name, 20),
                h.body, h.only_if_overridden, h.category)


DATAMODULE_HOOKS: tuple[Hook, ...] = tuple(
    _as_datamodule(h) for h in MODULE_HOOKS if h.name in _DATAMODULE_NAMES
) + (
    Hook("state_dict", "datamodule", (), "dict[str, Any]",
         "State saved in checkpoints under the DataModule's class name when non-empty.", ALL, 10,
         "return {}", category="checkpoint"),
    Hook("load_state_dict", "datamodule", (Param("state_dict", "dict[str, Any]"),), "None",
         "Restores the state returned by state_dict.", ALL, 11, category="checkpoint"),
    Hook("on_exception", "datamodule", (Param("exception", "BaseException"),), "None",
         "When an entry point raises.", ALL, 30),
)

# --------------------------------------------------------------------------------------------------
# Callback: every hook gets (trainer, pl_module, ...)
# --------------------------------------------------------------------------------------------------
_CB_RANK = {"on_train_epoch_end": 1, "on_validation_epoch_end": 2, "on_train_batch_end": 3,
            "on_train_start": 4, "on_fit_start": 5, "setup": 6, "on_train_epoch_start": 7,
            "on_validation_end": 8, "on_exception": 9, "on_save_checkpoint": 10, "on_load_checkpoint": 11,
            "on_train_end": 12, "on_before_optimizer_step": 13, "on_after_backward": 14, "teardown": 15}


def _cb(name: str, extra: list[Param], doc: str, eps) -> Hook:
    return Hook(name, "callback", (_TRAINER, _PL_MODULE, *extra), "None", doc, tuple(eps),
                _CB_RANK.get(name, 50))


_MODULE_BY_NAME = {h.name: h for h in MODULE_HOOKS}
_CALLBACK_SHARED = (
    "on_fit_start", "on_fit_end", "on_train_start", "on_train_end", "on_validation_start",
    "on_validation_end", "on_test_start", "on_test_end", "on_predict_start", "on_predict_end",
    "on_train_epoch_start", "on_train_epoch_end", "on_validation_epoch_start", "on_validation_epoch_end",
    "on_test_epoch_start", "on_test_epoch_end", "on_predict_epoch_start", "on_predict_epoch_end",
    "on_train_batch_start", "on_train_batch_end", "on_validation_batch_start", "on_validation_batch_end",
    "on_test_batch_start", "on_test_batch_end", "on_predict_batch_start", "on_predict_batch_end",
    "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
    "setup", "teardown", "on_save_checkpoint", "on_load_checkpoint",
)

CALLBACK_HOOKS: tuple[Hook, ...] = tuple(
    _cb(n, list(_MODULE_BY_NAME[n].params), _MODULE_BY_NAME[n].doc, _MODULE_BY_NAME[n].entry_points)
    for n in _CALLBACK_SHARED
) + (
    _cb("on_sanity_check_start", [], "Before the sanity-check validation run in fit.", [F]),
    _cb("on_sanity_check_end", [], "After the sanity-check validation run in fit.", [F]),
    _cb("on_exception", [Param("exception", "BaseException")],
        "When any entry point raises (including KeyboardInterrupt).", ALL),
    Hook("state_dict", "callback", (), "dict[str, Any]",
         "The callback's state, saved in checkpoints under its state_key.", ALL, 16, "return {}",
         category="checkpoint"),
    Hook("load_state_dict", "callback", (Param("state_dict", "dict[str, Any]"),), "None",
         "Restores the callback's state from a checkpoint.", ALL, 17, category="checkpoint"),
)

HOOKS_BY_OWNER: dict[str, dict[str, Hook]] = {
    "module": {h.name: h for h in MODULE_HOOKS},
    "datamodule": {h.name: h for h in DATAMODULE_HOOKS},
    "callback": {h.name: h for h in CALLBACK_HOOKS},
}

# --------------------------------------------------------------------------------------------------
# Where `self.log` is allowed (Lightning's _FxValidator table). Missing from this dict = not allowed.
# --------------------------------------------------------------------------------------------------
_STEP_LEVEL = LogRule(True, False, (False, True), (False, True))
_EVAL_LEVEL = LogRule(False, True, (False, True), (False, True))
_EPOCH_ONLY = LogRule(False, True, (False,), (True,))

LOG_RULES: dict[str, LogRule] = {
    **{n: _STEP_LEVEL for n in (
        "training_step", "on_train_batch_start", "on_train_batch_end", "on_before_backward", "backward",
        "on_after_backward", "on_before_optimizer_step", "optimizer_step", "configure_gradient_clipping",
        "clip_gradients", "on_before_zero_grad", "optimizer_zero_grad")},
    **{n: _EVAL_LEVEL for n in (
        "validation_step", "test_step", "on_validation_batch_start", "on_validation_batch_end",
        "on_test_batch_start", "on_test_batch_end")},
    **{n: _EPOCH_ONLY for n in (
        "on_train_start", "on_validation_start", "on_test_start", "on_train_epoch_start",
        "on_validation_epoch_start", "on_test_epoch_start", "on_train_epoch_end", "on_validation_epoch_end",
        "on_test_epoch_end")},
    # 1.x epoch-end hooks that torchbolt still runs: epoch-level logging like on_*_epoch_end
    **{n: _EPOCH_ONLY for n in ("training_epoch_end", "validation_epoch_end", "test_epoch_end")},
}

#: Hooks where Lightning refuses `self.log` outright.
LOG_FORBIDDEN: frozenset[str] = frozenset({
    "lr_scheduler_step", "on_fit_start", "on_fit_end", "on_sanity_check_start", "on_sanity_check_end",
    "on_train_end", "on_validation_end", "on_test_end", "on_predict_start", "on_predict_end",
    "on_predict_epoch_start", "on_predict_epoch_end", "on_predict_batch_start", "on_predict_batch_end",
    "predict_step", "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer",
    "on_exception", "state_dict", "on_save_checkpoint", "on_load_checkpoint", "load_state_dict", "setup",
    "teardown", "configure_sharded_model", "configure_model", "configure_optimizers", "configure_callbacks",
    "prepare_data", "train_dataloader", "val_dataloader", "test_dataloader", "predict_dataloader",
    "on_validation_model_zero_grad", "on_validation_model_eval", "on_test_model_eval",
    "on_validation_model_train", "on_test_model_train", "on_predict_model_eval",
})

# --------------------------------------------------------------------------------------------------
# Hook points the loop dispatches, in the documented caller order (see lightning-api.md §2).
# The runtime's dispatcher reads this table and refuses names that are not in it; module-only hooks
# (steps, optimizer hooks, dataloader hooks) go through its `call_module`, which checks MODULE_HOOKS.
# --------------------------------------------------------------------------------------------------
HOOK_POINTS: dict[str, HookPoint] = {hp.name: hp for hp in (
    HookPoint("prepare_data", callbacks=False, datamodule=True),  # datamodule's, then the module's
    HookPoint("setup", datamodule=True),  # datamodule, callbacks, module
    HookPoint("teardown", datamodule=True),
    HookPoint("on_fit_start"), HookPoint("on_fit_end"),
    HookPoint("on_sanity_check_start", module=False), HookPoint("on_sanity_check_end", module=False),
    HookPoint("on_train_start", strategy=True), HookPoint("on_train_end", strategy=True),
    HookPoint("on_validation_start", strategy=True), HookPoint("on_validation_end", strategy=True),
    HookPoint("on_test_start", strategy=True), HookPoint("on_test_end", strategy=True),
    HookPoint("on_predict_start", strategy=True), HookPoint("on_predict_end", strategy=True),
    HookPoint("on_train_epoch_start"), HookPoint("on_train_epoch_end", monitoring_last=True),
    HookPoint("on_validation_epoch_start"), HookPoint("on_validation_epoch_end"),
    HookPoint("on_test_epoch_start"), HookPoint("on_test_epoch_end"),
    HookPoint("on_predict_epoch_start"), HookPoint("on_predict_epoch_end"),
    HookPoint("on_train_batch_start", strategy=True), HookPoint("on_train_batch_end"),
    HookPoint("on_validation_batch_start"), HookPoint("on_validation_batch_end"),
    HookPoint("on_test_batch_start"), HookPoint("on_test_batch_end"),
    HookPoint("on_predict_batch_start"), HookPoint("on_predict_batch_end"),
    HookPoint("on_before_zero_grad"), HookPoint("on_before_backward"), HookPoint("on_after_backward"),
    HookPoint("on_before_optimizer_step"),
    HookPoint("on_save_checkpoint"),
    HookPoint("on_load_checkpoint", module_first=True),
    HookPoint("on_exception", module=False, datamodule=True, datamodule_first=False),
    # checkpoint state: every callback's (under its state_key) and the DataModule's (under its class name)
    HookPoint("state_dict", module=False, datamodule=True, per_owner_state=True),
    HookPoint("load_state_dict", module=False, datamodule=True, per_owner_state=True),
)}

#: The usual number of positional arguments the Trainer passes to each step method (after self).
STEP_CALL_ARGS: dict[str, tuple[int, int]] = {
    # name: (min passed, max passed)  -- batch, batch_idx, [dataloader_idx when several loaders]
    "training_step": (1, 2),
    "validation_step": (1, 3),
    "test_step": (1, 3),
    "predict_step": (1, 3),
}

#: Hooks that the Trainer runs with the module already in eval mode and gradients disabled (the
#: validation, test and predict loops: `on_*_model_eval` then `torch.no_grad`/`inference_mode` around
#: the whole loop, reference §2.3-2.4). Calling `self.eval()` or `torch.no_grad()` there is redundant.
EVAL_MODE_HOOKS: frozenset[str] = frozenset(
    f"{prefix}{stage}{suffix}"
    for stage in ("validation", "test", "predict")
    for prefix, suffix in (("", "_step"), ("on_", "_start"), ("on_", "_end"), ("on_", "_epoch_start"),
                           ("on_", "_epoch_end"), ("on_", "_batch_start"), ("on_", "_batch_end"))
)

#: Hooks that the Trainer runs with the module already in train mode (inside the training batch loop).
TRAIN_MODE_HOOKS: frozenset[str] = frozenset({"training_step", "on_train_batch_start", "on_train_batch_end"})
