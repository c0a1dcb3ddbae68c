"""Prediction (reference §2.4): model to eval mode, on_predict_start, on_predict_epoch_start, per batch
on_predict_batch_start / predict_step / on_predict_batch_end, on_predict_epoch_end, on_predict_end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from torchbolt.callbacks.prediction_writer import BasePredictionWriter, record_batch_indices
from torchbolt.trainer.dispatch import PREDICT_NEXT_ACTION, fetch

if TYPE_CHECKING:
    from torchbolt.loops.context import Loops


class PredictLoop:
    """`trainer.predict`; `predictions` holds the last run's outputs (per dataloader when several)."""

    def __init__(self, loops: Loops) -> None:
        self._loops = loops
        self.predictions: list[Any] | None = None
        #: sample indices of the current batch and of every batch per dataloader, for prediction writers
        self.current_batch_indices: list[int] | None = None
        self.epoch_batch_indices: list[list[list[int]]] = []

    def run(self, return_predictions: bool) -> list[Any] | None:
        """Run predict_step over every predict dataloader."""
        loops = self._loops
        trainer = loops.trainer
        hooks = loops.hooks
        plan = loops.plan
        module = loops.module
        loops.metrics.activate(None)
        loaders = loops.sources.eval_loaders["predict"]
        max_batches = loops.sources.num_eval_batches["predict"]
        progress = loops.state.predict_batch
        progress.reset_current()
        if sum(max_batches) == 0:
            return None
        multiple = len(loaders) > 1
        all_predictions: list[list[Any]] = []
        grad_ctx = torch.inference_mode() if trainer.inference_mode else torch.no_grad()
        # Prediction writers get each batch's sample indices (recorded from the batch samplers), and an
        # epoch-interval writer gets all predictions even with return_predictions=False (as in Lightning).
        writers = [cb for cb in trainer.callbacks if isinstance(cb, BasePredictionWriter)]
        recorders = [record_batch_indices(loader) for loader in loaders] if writers else []
        keep = return_predictions or any(w.interval.on_epoch for w in writers)
        self.current_batch_indices = None
        self.epoch_batch_indices = [[] for _ in loaders]
        profiler = plan.profiler
        first_iter = iter(loaders[0]) if max_batches[0] else None
        with grad_ctx:
            loops.modes.capture(module)
            hooks.call_module("on_predict_model_eval")
            hooks.call("on_predict_start")
            if loops.sources.eval_loaders["predict"] is not loaders:
                # a start hook rebuilt the dataloaders (BatchSizeFinder): the run goes on with the new ones
                loaders = loops.sources.eval_loaders["predict"]
                max_batches = loops.sources.num_eval_batches["predict"]
                multiple = len(loaders) > 1
                recorders = [record_batch_indices(loader) for loader in loaders] if writers else []
                self.epoch_batch_indices = [[] for _ in loaders]
                first_iter = iter(loaders[0]) if max_batches[0] else None
            hooks.call("on_predict_epoch_start")
            for dl_idx, loader in enumerate(loaders):
                predictions: list[Any] = []
                limit = max_batches[dl_idx]
                iterator = first_iter if dl_idx == 0 else (iter(loader) if limit else None)
                batch_idx = 0
                log_idx = dl_idx if multiple else None
                while iterator is not None and batch_idx < limit:
                    try:
                        batch = fetch(iterator, profiler, PREDICT_NEXT_ACTION)
                    except StopIteration:
                        break
                    recorder = recorders[dl_idx] if recorders else None
                    if recorder is not None and batch_idx < len(recorder.seen):
                        self.current_batch_indices = recorder.seen[batch_idx]
                        self.epoch_batch_indices[dl_idx].append(self.current_batch_indices)
                    if plan.transfer:
                        batch = loops.to_device(batch, dl_idx)
                    progress.increment("ready")
                    hook_args = (batch, batch_idx) if log_idx is None else (batch, batch_idx, log_idx)
                    hooks.call("on_predict_batch_start", *hook_args)
                    progress.increment("started")
                    output = loops.run_step("predict_step", plan.step_args("predict_step", batch, batch_idx, log_idx))
                    progress.increment("processed")
                    hooks.call("on_predict_batch_end", output, *hook_args)
                    progress.increment("completed")
                    if keep:
                        predictions.append(output)
                    batch_idx += 1
                all_predictions.append(predictions)
            self.predictions = all_predictions if multiple else (all_predictions[0] if all_predictions else [])
            hooks.call("on_predict_epoch_end")
            hooks.call("on_predict_end")
            loops.modes.restore(module)
        if not return_predictions:
            return None
        return self.predictions
