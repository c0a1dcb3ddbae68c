"""PyTorchProfiler: torch.profiler around the run, with each action as a `record_function` range."""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerAction, ProfilerActivity

from torchbolt._lazy import not_provided_getattr as _not_provided_getattr
from torchbolt.profilers.profiler import Profiler
from torchbolt.utilities.exceptions import MisconfigurationException

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule

_STEP_FUNCTIONS = ("training_step", "validation_step", "test_step", "predict_step")
_SORT_KEYS = {"cpu_time", "cuda_time", "cpu_time_total", "cuda_time_total", "cpu_memory_usage", "cuda_memory_usage",
              "self_cpu_memory_usage", "self_cuda_memory_usage", "count"}


class PyTorchProfiler(Profiler):
    """Profiles operators with `torch.profiler.profile`.

    Each Trainer action becomes a `record_function` range named `[pl][profile]<action>`, and with
    `record_module_names` each submodule's forward a range named after its path. The profiler steps after
    every step method; unless a `schedule` is given, a stage of 5 steps or more uses the schedule wait 1,
    warmup 1, active 3 (repeated) and a shorter one records every step. Traces go to `dirpath` as Chrome traces
    (`export_to_chrome`); the report is the operator table sorted by `sort_by_key`. `emit_nvtx=True`
    emits NVTX ranges for nsys/nvprof instead (CUDA only). Other keyword arguments (`record_shapes`,
    `profile_memory`, `with_stack`, `schedule`, `activities`, `on_trace_ready`...) go to torch.profiler.
    """

    STEP_FUNCTIONS = set(_STEP_FUNCTIONS)
    AVAILABLE_SORT_KEYS = _SORT_KEYS

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        group_by_input_shapes: bool = False,
        emit_nvtx: bool = False,
        export_to_chrome: bool = True,
        row_limit: int = 20,
        sort_by_key: str | None = None,
        record_module_names: bool = True,
        table_kwargs: dict[str, Any] | None = None,
        **profiler_kwargs: Any,
    ) -> None:
        super().__init__(dirpath=dirpath, filename=filename)
        self._group_by_input_shapes = group_by_input_shapes and profiler_kwargs.get("record_shapes", False)
        self._emit_nvtx = emit_nvtx
        if emit_nvtx and not torch.cuda.is_available():
            raise MisconfigurationException(
                "PyTorchProfiler(emit_nvtx=True) needs CUDA (NVTX ranges are read by nsys/nvprof); remove emit_nvtx "
                "on this machine."
            )
        self._export_to_chrome = export_to_chrome
        self._row_limit = row_limit
        self._profiler_kwargs = dict(profiler_kwargs)
        self._sort_by_key = sort_by_key or self._default_sort_key()
        if self._sort_by_key not in _SORT_KEYS:
            raise MisconfigurationException(
                f"Found sort_by_key: {self._sort_by_key}. Should be within {sorted(_SORT_KEYS)}. "
            )
        self._record_module_names = record_module_names
        self._table_kwargs = table_kwargs or {}
        valid_table = set(inspect.signature(torch.autograd.profiler_util.EventList.table).parameters) - {
            "self", "sort_by", "row_limit"}
        for key in self._table_kwargs:
            if key in ("sort_by", "row_limit"):
                raise KeyError(f"Found invalid table_kwargs key: {key}. This is already a positional argument of the "
                               "Profiler.")
            if key not in valid_table:
                raise KeyError(f"Found invalid table_kwargs key: {key}. Should be within {sorted(valid_table)}.")
        schedule = self._profiler_kwargs.get("schedule")
        if schedule is not None:
            if not callable(schedule):
                raise MisconfigurationException(f"Schedule should be a callable. Found: {schedule}")
            if not isinstance(schedule(0), ProfilerAction):
                raise MisconfigurationException(
                    f"Schedule should return a `torch.profiler.ProfilerAction`. Found: {schedule(0)}"
                )
        self._user_schedule = "schedule" in self._profiler_kwargs
        self._has_on_trace_ready = "on_trace_ready" in self._profiler_kwargs
        self._profiler_kwargs.setdefault("activities", self._default_activities())
        self.profiler: Any = None
        self._nvtx: Any = None
        self.function_events: Any = None
        self._lightning_module: LightningModule | None = None
        self._recording: dict[str, record_function] = {}
        self._module_hooks: list[Any] = []
        self._steps = 0
        self.trace_paths: list[str] = []

    def _default_sort_key(self) -> str:
        activities = self._profiler_kwargs.get("activities") or []
        cuda = ProfilerActivity.CUDA in activities or (not activities and torch.cuda.is_available())
        return f"{'cuda' if cuda else 'cpu'}_time_total"

    @staticmethod
    def _default_activities() -> list[ProfilerActivity]:
        acts = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            acts.append(ProfilerActivity.CUDA)
        return acts

    def _total_steps(self) -> float:
        trainer = getattr(self._lightning_module, "_trainer", None) or getattr(self._lightning_module, "trainer", None)
        if trainer is None:
            return float("inf")
        stage = {"fit": "num_training_batches", "validate": "num_val_batches", "test": "num_test_batches",
                 "predict": "num_predict_batches"}.get(self._stage or "", "")
        value = getattr(trainer, stage, float("inf")) if stage else float("inf")
        return float(sum(value)) if isinstance(value, list) else float(value)

    def _create(self) -> None:
        if self._emit_nvtx:
            self._nvtx = torch.autograd.profiler.emit_nvtx(record_shapes=self._profiler_kwargs.get("record_shapes",
                                                                                                     False))
            self._nvtx.__enter__()
            self.profiler = self._nvtx
            return
        kwargs = {k: v for k, v in self._profiler_kwargs.items()
                  if k in inspect.signature(torch.profiler.profile.__init__).parameters}
        if not self._has_on_trace_ready:
            kwargs["on_trace_ready"] = self._export_trace
        self.profiler = torch.profiler.profile(**kwargs)
        self.profiler.__enter__()

    def _export_trace(self, prof: Any) -> None:
        if not self._export_to_chrome:
            return
        if self.dirpath is None:
            warnings.warn("The PyTorchProfiler failed to export trace as `dirpath` is None", stacklevel=2)
            return
        os.makedirs(self.dirpath, exist_ok=True)
        path = os.path.join(os.fspath(self.dirpath),
                            self._prepare_filename(action_name=f"trace-{self._steps}", extension=".pt.trace.json"))
        prof.export_chrome_trace(path)
        self.trace_paths.append(path)

    def _register_module_names(self) -> None:
        module = self._lightning_module
        if module is None or self._module_hooks or not self._record_module_names:
            return
        for name, sub in module.named_modules():
            if not name:
                continue
            label = f"[pl][module]{type(sub).__module__}.{type(sub).__name__}: {name}"

            def pre(_m: Any, _inp: Any, _label: str = label) -> None:
                rf = record_function(_label)
                rf.__enter__()
                _m._torchbolt_record = rf

            def post(_m: Any, _inp: Any, _out: Any) -> None:
                rf = getattr(_m, "_torchbolt_record", None)
                if rf is not None:
                    rf.__exit__(None, None, None)
                    _m._torchbolt_record = None

            self._module_hooks += [sub.register_forward_pre_hook(pre), sub.register_forward_hook(post)]

    def start(self, action_name: str) -> None:
        if self.profiler is None:
            self._create()
        self._register_module_names()
        if action_name not in self._recording:
            rf = record_function("[pl][profile]" + action_name)
            rf.__enter__()
            self._recording[action_name] = rf

    def stop(self, action_name: str) -> None:
        rf = self._recording.pop(action_name, None)
        if rf is not None:
            rf.__exit__(None, None, None)
        if self._emit_nvtx or self.profiler is None:
            return
        if action_name.endswith(_STEP_FUNCTIONS):
            if self._steps == 0 and not self._user_schedule and self._total_steps() >= 5:
                # Record every step until the first one ends (the number of steps is known only then); a
                # long stage then switches to the default schedule (wait 1, warmup 1, active 3, repeated).
                self.profiler.schedule = torch.profiler.schedule(wait=1, warmup=1, active=3)
            self._steps += 1
            self.profiler.step()

    def _close(self) -> None:
        for action in list(self._recording):
            self._recording.pop(action).__exit__(None, None, None)
        if self.profiler is not None:
            self.profiler.__exit__(None, None, None)
            if not self._emit_nvtx:
                self.function_events = self.profiler.events()
            self.profiler = None
        for handle in self._module_hooks:
            handle.remove()
        self._module_hooks = []

    def summary_data(self, top: int = 20) -> dict[str, Any]:
        if not self.function_events:
            return {"actions": []}
        rows = []
        for ev in self.function_events.key_averages():
            if ev.key.startswith("[pl][profile]"):
                total = ev.cpu_time_total / 1e6
                rows.append({"name": ev.key[len("[pl][profile]"):], "count": ev.count, "total_s": total,
                             "mean_s": total / max(ev.count, 1), "percent": None})
        rows.sort(key=lambda r: r["total_s"], reverse=True)
        return {"actions": rows[:top], "traces": list(self.trace_paths)}

    def summary(self) -> str:
        if not self._profiler_kwargs.get("enabled", True) or self._emit_nvtx:
            self._close()
            return ""
        self._close()
        if not self.function_events:
            return ""
        data = self.function_events.key_averages(group_by_input_shapes=self._group_by_input_shapes)
        table = data.table(sort_by=self._sort_by_key, row_limit=self._row_limit, **self._table_kwargs)
        return self._stats_to_str({"records": table})

    def teardown(self, stage: str | None) -> None:
        self._close()
        super().teardown(stage=stage)


__getattr__ = _not_provided_getattr(__name__)  # Lightning names this module lacks name their alternative
