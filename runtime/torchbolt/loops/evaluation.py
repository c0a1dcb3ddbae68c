"""Evaluation (reference §2.1 steps 9 and 13.6, §2.3): the sanity check, validation inside fit,
`trainer.validate` and `trainer.test`. One run reads in hook order: model to eval mode,
on_*_start, on_*_epoch_start, per batch on_*_batch_start / step / on_*_batch_end, per-dataloader
epoch metrics, on_*_epoch_end, on_*_end, model back to its previous mode.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from torchbolt.catalog import REMOVED_HOOKS
from torchbolt.loops._common import ModuleModes, capture_rng, restore_rng
from torchbolt.loops.plan import defines_legacy
from torchbolt.trainer.dispatch import EVAL_NEXT_ACTIONS, fetch, is_overridden
from torchbolt.trainer.state import RunningStage

if TYPE_CHECKING:
    from torchbolt.loops.context import Loops


def warn_epoch_end(loops: Loops, name: str, warned: set[str]) -> None:
    """Warn once that a 1.x `*_epoch_end(outputs)` hook is still called, and how to migrate."""
    if name in warned:
        return
    warned.add(name)
    warnings.warn(
        f"{type(loops.module).__name__}.{name}(outputs) is a Lightning 1.x hook that 2.x removed; torchbolt still "
        f"calls it with the collected step outputs. To migrate: {REMOVED_HOOKS[name].replacement}.",
        DeprecationWarning,
        stacklevel=3,
    )


class EvaluationLoop:
    """Validation and test runs."""

    def __init__(self, loops: Loops) -> None:
        self._loops = loops
        self.warned_epoch_end: set[str] = set()

    # -- the sanity check (before training) ----------------------------------------------------------
    def should_sanity_check(self) -> bool:
        loops = self._loops
        trainer = loops.trainer
        return (trainer.enable_validation and trainer.num_sanity_val_steps > 0
                and loops.state.resume_point is None and not loops.state.restored)

    def sanity_check(self) -> None:
        """on_sanity_check_start, a short validation run, on_sanity_check_end; training's RNG is untouched."""
        loops = self._loops
        hooks = loops.hooks
        trainer_state = loops.trainer_state
        stage = trainer_state.stage
        rng = capture_rng()  # the sanity check must not shift the training's random streams
        try:
            trainer_state.stage = RunningStage.SANITY_CHECKING
            loops.metrics.reset_metrics()
            hooks.call("on_sanity_check_start")
            self.run(RunningStage.SANITY_CHECKING, in_fit=True)
            hooks.call("on_sanity_check_end")
            loops.metrics.reset_metrics()
            loops.state.fit.val_batch.total.reset()
            loops.state.fit.val_batch.reset_current()
            trainer_state.stage = stage
        finally:
            restore_rng(rng)

    # -- one evaluation run ---------------------------------------------------------------------------
    def run(self, stage: RunningStage, in_fit: bool) -> list[dict[str, float]]:
        """One evaluation run; returns the logged metrics per dataloader."""
        loops = self._loops
        trainer = loops.trainer
        hooks = loops.hooks
        metrics = loops.metrics
        plan = loops.plan
        state = loops.state
        trainer_state = loops.trainer_state
        module = loops.module
        sources = loops.sources
        stop = loops.stop
        testing = stage == RunningStage.TESTING
        sanity = stage == RunningStage.SANITY_CHECKING
        prev_stage = trainer_state.stage
        trainer_state.stage = stage
        key = "test" if testing else "validate"
        if in_fit:
            sources.setup_val()
            loaders = sources.val_loaders or []
            max_batches = list(sources.num_val_batches)
            batch_progress = state.fit.val_batch
        else:
            loaders = sources.eval_loaders[key]
            max_batches = list(sources.num_eval_batches[key])
            batch_progress = state.test_batch if testing else state.validate_batch
        if sanity:
            steps = trainer.num_sanity_val_steps
            max_batches = [min(steps, n) for n in max_batches]
        if sum(max_batches) == 0:
            trainer_state.stage = prev_stage
            return []
        prefix = "test" if testing else "validation"
        step_name = "test_step" if testing else "validation_step"
        legacy_end = "test_epoch_end" if testing else "validation_epoch_end"
        collect = defines_legacy(module, legacy_end)
        if collect:
            warn_epoch_end(loops, legacy_end, self.warned_epoch_end)
        multiple = len(loaders) > 1
        results = loops.results("sanity" if sanity else (stage.value if not in_fit else "val"))
        prev_results = metrics.active
        prev_on_step = metrics.on_step
        metrics.activate(results)
        metrics.set_on_step(True)
        batch_progress.reset_current()
        if in_fit:
            state.val_has_run = False
            batch_progress.total.reset()
            for dl in loaders:
                sampler = getattr(dl, "sampler", None)
                if sampler is not None and callable(getattr(sampler, "set_epoch", None)):
                    sampler.set_epoch(state.fit.epoch.current.processed)
        first_iter = iter(loaders[0]) if max_batches[0] else None
        grad_ctx = torch.inference_mode() if trainer.inference_mode else torch.no_grad()
        logged_outputs: list[dict[str, Tensor]] = []
        all_outputs: list[list[Any]] = []
        with grad_ctx:
            modes = loops.modes
            modes.capture(module)
            hooks.call_module("on_test_model_eval" if testing else "on_validation_model_eval")
            hooks.call(f"on_{prefix}_start")
            if not in_fit and sources.eval_loaders[key] is not loaders:
                # a start hook rebuilt the dataloaders (BatchSizeFinder): the run goes on with the new ones
                loaders = sources.eval_loaders[key]
                max_batches = list(sources.num_eval_batches[key])
                first_iter = iter(loaders[0]) if max_batches[0] else None
                multiple = len(loaders) > 1
            hooks.call(f"on_{prefix}_epoch_start")
            has_start = hooks.has(f"on_{prefix}_batch_start")
            has_end = hooks.has(f"on_{prefix}_batch_end")
            transfer = plan.transfer
            for dl_idx, loader in enumerate(loaders):
                outputs: list[Any] = []
                limit = max_batches[dl_idx]
                if limit == 0:
                    all_outputs.append(outputs)
                    continue
                iterator = first_iter if dl_idx == 0 else iter(loader)
                assert iterator is not None
                batch_idx = 0
                log_idx = dl_idx if multiple else None
                profiler = loops.plan.profiler
                fetch_action = EVAL_NEXT_ACTIONS[stage.value]
                while batch_idx < limit:
                    try:
                        batch = fetch(iterator, profiler, fetch_action)
                    except StopIteration:
                        break
                    batch_progress.is_last_batch = batch_idx + 1 >= limit
                    if transfer:
                        batch = loops.to_device(batch, dl_idx)
                    batch_progress.increment("ready")
                    results.batch = batch
                    results.batch_size = None
                    results.dataloader_idx = log_idx
                    hook_args = (batch, batch_idx) if log_idx is None else (batch, batch_idx, log_idx)
                    if has_start:
                        hooks.call(f"on_{prefix}_batch_start", *hook_args)
                    batch_progress.increment("started")
                    output = loops.run_step(step_name, plan.step_args(step_name, batch, batch_idx, log_idx))
                    batch_progress.increment("processed")
                    if has_end:
                        hooks.call(f"on_{prefix}_batch_end", output, *hook_args)
                    if collect and output is not None:
                        outputs.append(output)
                    batch_progress.increment("completed")
                    if not sanity:
                        state.val_has_run = in_fit
                        step_log = results.metrics(True)[1]
                        if step_log:
                            loops.log_metrics(step_log, step=state.next_eval_step(stage.value, dl_idx))
                    results.batch = None
                    batch_idx += 1
                    if stop.signum is not None:
                        stop.raise_pending()  # Ctrl-C / SIGTERM during fit: stop after this batch
                all_outputs.append(outputs)
                # per-dataloader epoch metrics (Lightning's _store_dataloader_outputs)
                metrics.set_on_step(False)
                logged_outputs.append(self._epoch_metrics(sanity))
                metrics.set_on_step(True)
            metrics.set_on_step(False)
            results.dataloader_idx = None
            if collect:
                hooks.call_module(legacy_end, all_outputs if multiple else all_outputs[0])
            hooks.call(f"on_{prefix}_epoch_end")
            metrics.epoch_metrics()
            epoch_end_logged = self._epoch_metrics(sanity)
            combined: dict[str, Tensor] = {}
            for out in logged_outputs:
                combined.update(out)
            combined.update(epoch_end_logged)
            for out in logged_outputs:
                out.update(epoch_end_logged)
            if not sanity:
                loops.log_metrics(combined)
            hooks.call(f"on_{prefix}_end")
            metrics.reset_results(results)
            state.last_val_time = time.monotonic()
            train_hook = "on_test_model_train" if testing else "on_validation_model_train"
            from torchbolt.core.module import LightningModule

            if is_overridden(module, train_hook, LightningModule):
                loops.modes = ModuleModes()
                hooks.call_module(train_hook)
            else:
                modes.restore(module)
        metrics.activate(prev_results)
        metrics.on_step = prev_on_step
        trainer_state.stage = prev_stage
        return [{k: (v.item() if isinstance(v, Tensor) else v) for k, v in out.items()} for out in logged_outputs]

    def _epoch_metrics(self, sanity: bool) -> dict[str, Tensor]:
        if sanity:
            return {}
        return dict(self._loops.metrics.epoch_metrics()[1])
