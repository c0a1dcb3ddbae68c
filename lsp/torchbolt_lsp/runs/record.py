"""What the server knows about one run: its state, metric history and outcome, built from its events.

A RunRecord is fed events in order (`apply`) and can be saved as `summary.json` and loaded back, so hints
and hovers show the last run again after a server restart without replaying its whole event log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_module
from . import format as fmt

if TYPE_CHECKING:
    from torchbolt import events as ev
else:  # pydantic models: imported at the first run, not at server start
    ev = lazy_module("torchbolt.events")

#: Points kept per metric (in memory and in summary.json).
HISTORY_LIMIT = 200
SUMMARY_VERSION = 1
#: The run_started fields that say where a run executes (kept on the record and in summary.json).
_HARDWARE = ("accelerator", "devices", "device_ids", "strategy", "precision", "num_nodes", "world_size")


@dataclass
class Point:
    """One observed value of a metric."""

    epoch: int
    step: int
    value: float | None
    scope: str  # "step" | "epoch" | "validate" | "test"


def _same_point(last: Point, new: Point) -> bool:
    """Whether `new` repeats `last`: the same value in the same epoch, and the same step unless one of them
    is an epoch-level value (step-level values may legitimately repeat from step to step)."""
    if last.epoch != new.epoch or last.value != new.value:
        return False
    return last.step == new.step or "step" not in (last.scope, new.scope)


@dataclass
class RunRecord:
    """One run: identity, live state and results. `key` identifies the target (one active run per key)."""

    run_id: str
    key: str  # "<file path>::<ClassName>" (or "<file path>:<line>" for a script call)
    fn: str
    uri: str
    label: str  # what the user sees: the class name
    command: list[str] = field(default_factory=list)
    status: str = "starting"  # starting | running | stopping | success | interrupted | failed
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    max_epochs: int | None = None
    max_steps: int | None = None
    epoch: int | None = None
    batch: int | None = None
    total: int | None = None
    stage: str = "train"
    global_step: int = 0
    log_dir: str | None = None
    monitor: str | None = None
    monitor_mode: str | None = None
    best_model_path: str | None = None
    best_model_score: float | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, list[Point]] = field(default_factory=dict)
    latest: dict[str, float | None] = field(default_factory=dict)
    progress_metrics: dict[str, float | None] = field(default_factory=dict)
    duration_s: float | None = None
    epochs: int | None = None
    failure: dict[str, Any] | None = None
    events_seen: int = 0
    returncode: int | None = None
    pid: int | None = None  # the child process (leader of its process group)
    # Where the run executes, from run_started (None when the runtime did not say).
    accelerator: str | None = None
    devices: int | None = None
    device_ids: list[int] | None = None
    strategy: str | None = None
    precision: str | None = None
    num_nodes: int | None = None
    world_size: int | None = None

    # ------------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while the child process may still be running."""
        return self.status in ("starting", "running", "stopping")

    def _add(self, metrics: dict[str, float | None], epoch: int, step: int, scope: str) -> None:
        for name, value in metrics.items():
            self.latest[name] = value
            series = self.history.setdefault(name, [])
            if series and _same_point(series[-1], Point(epoch, step, value, scope)):
                continue  # one logged value reported twice (validation end, then the epoch's metrics)
            series.append(Point(epoch, step, value, scope))
            if len(series) > HISTORY_LIMIT:
                del series[: len(series) - HISTORY_LIMIT]

    def apply(self, event: ev.Event) -> None:
        """Update the record with one event (events must come in stream order)."""
        self.events_seen += 1
        if isinstance(event, ev.Progress):
            self.status = "running" if self.status == "starting" else self.status
            self.stage, self.epoch, self.batch, self.total = event.stage, event.epoch, event.batch, event.total
            self.global_step = event.global_step
            self.progress_metrics = dict(event.metrics)
            self.latest.update(event.metrics)
        elif isinstance(event, ev.Metrics):
            self._add(event.metrics, event.epoch, event.step, event.scope)
            self.global_step = max(self.global_step, event.step)
        elif isinstance(event, ev.ValidationEnd):
            # callback metrics hold the training values too: only the ones not seen this epoch are new points
            fresh = {k: v for k, v in event.metrics.items()
                     if not (self.history.get(k) and self.history[k][-1].epoch == event.epoch
                             and self.history[k][-1].value == v)}
            self._add(fresh, event.epoch, event.global_step, event.stage)
        elif isinstance(event, ev.EpochStarted):
            self.status = "running" if self.status == "starting" else self.status
            self.stage, self.epoch, self.batch, self.total = "train", event.epoch, 0, event.total
        elif isinstance(event, ev.RunStarted):
            self.status = "running" if self.status == "starting" else self.status
            self.fn = event.fn
            self.max_epochs, self.max_steps = event.max_epochs, event.max_steps
            self.total, self.log_dir = event.num_training_batches, event.log_dir
            self.pid = self.pid or event.pid
            for name in _HARDWARE:
                value = getattr(event, name, None)
                if value is not None:
                    setattr(self, name, value)
        elif isinstance(event, ev.CheckpointSaved):
            self.checkpoints.append({"path": event.path, "kind": event.kind, "score": event.score,
                                     "epoch": event.epoch, "global_step": event.global_step})
            if event.monitor:
                self.monitor = event.monitor
            if event.kind == "best":
                self.best_model_path, self.best_model_score = event.path, event.score
        elif isinstance(event, ev.Finished):
            self.status = event.status
            self.ended_at = event.t
            self.duration_s, self.epochs, self.global_step = event.duration_s, event.epochs, event.global_step
            self.best_model_path = event.best_model_path or self.best_model_path
            self.best_model_score = event.best_model_score if event.best_model_score is not None else \
                self.best_model_score
            self.monitor = event.monitor or self.monitor
            self.log_dir = event.log_dir or self.log_dir
            for name, value in event.callback_metrics.items():
                self.latest[name] = value
                series = self.history.get(name)
                if series is None or series[-1].value != value:
                    self._add({name: value}, event.epochs, event.global_step, "epoch")
        elif isinstance(event, ev.Failed):
            self.status = "failed"
            self.ended_at = event.t
            self.failure = event.model_dump(mode="json")

    # ------------------------------------------------------------------------------------------
    @property
    def hardware(self) -> str | None:
        """`cpu ×2 · ddp · 32-true` (None when the runtime did not report its hardware)."""
        return fmt.hardware_label(self.accelerator, self.devices, self.device_ids, self.strategy, self.precision,
                                  self.num_nodes, self.world_size)

    def mode(self, name: str) -> str:
        """'min' or 'max' for a metric of this run."""
        return fmt.metric_mode(name, self.monitor, self.monitor_mode)

    def values(self, name: str) -> list[float | None]:
        return [p.value for p in self.history.get(name, ())]

    def hint(self, name: str) -> str | None:
        """The inlay-hint label for a metric, or None when this run never reported it."""
        if name not in self.history and name not in self.latest:
            return None
        best = self.best_model_score if name == self.monitor and self.best_model_score is not None else None
        return fmt.hint_label(name, self.values(name), self.mode(name), best, self.latest.get(name))

    def per_epoch(self, name: str) -> list[tuple[int, float | None]]:
        """The last value reported in each epoch, in epoch order."""
        by_epoch: dict[int, float | None] = {}
        for point in self.history.get(name, ()):
            by_epoch[point.epoch] = point.value
        return sorted(by_epoch.items())

    def final(self, name: str) -> float | None:
        return self.latest.get(name)

    # ------------------------------------------------------------------------------------------
    def to_summary(self) -> dict[str, Any]:
        """JSON-ready summary (summary.json)."""
        return {
            "summary_version": SUMMARY_VERSION, "run_id": self.run_id, "key": self.key, "fn": self.fn,
            "uri": self.uri, "label": self.label, "command": self.command, "status": self.status,
            "started_at": self.started_at, "ended_at": self.ended_at, "max_epochs": self.max_epochs,
            "max_steps": self.max_steps, "epochs": self.epochs, "global_step": self.global_step,
            "duration_s": self.duration_s, "log_dir": self.log_dir, "monitor": self.monitor,
            "monitor_mode": self.monitor_mode,
            "best_model_path": self.best_model_path, "best_model_score": self.best_model_score,
            "checkpoints": self.checkpoints, "latest": self.latest, "failure": self.failure,
            "returncode": self.returncode, "events_seen": self.events_seen, "pid": self.pid,
            **{name: getattr(self, name) for name in _HARDWARE},
            "history": {k: [[p.epoch, p.step, p.value, p.scope] for p in v] for k, v in self.history.items()},
        }

    @classmethod
    def from_summary(cls, data: dict[str, Any]) -> RunRecord:
        """Load a summary written by `to_summary` (unknown keys ignored)."""
        if data.get("summary_version") != SUMMARY_VERSION:
            raise ValueError(f"summary version {data.get('summary_version')!r} is not supported")
        rec = cls(run_id=data["run_id"], key=data["key"], fn=data["fn"], uri=data["uri"], label=data["label"])
        for name in ("command", "status", "started_at", "ended_at", "max_epochs", "max_steps", "epochs",
                     "global_step", "duration_s", "log_dir", "monitor", "monitor_mode", "best_model_path",
                     "best_model_score", "checkpoints", "latest", "failure", "returncode", "events_seen", "pid",
                     *_HARDWARE):
            if name in data and data[name] is not None:
                setattr(rec, name, data[name])
        rec.history = {k: [Point(int(e), int(s), v, str(sc)) for e, s, v, sc in pts]
                       for k, pts in (data.get("history") or {}).items()}
        return rec

    def mark_abandoned(self) -> bool:
        """A stored run still marked active whose server is gone: it ended with that server (the child
        watches the server's lifeline), so it is "interrupted". True when the record changed."""
        if not self.active:
            return False
        self.status = "interrupted"
        self.ended_at = self.ended_at or self.started_at
        return True
