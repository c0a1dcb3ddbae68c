"""The run event stream: a versioned JSON-lines schema shared by the runtime and the language server.

A run started with ``--events TARGET`` (or ``TORCHBOLT_EVENTS``) writes one JSON object per line to
TARGET (a file path, or ``fd:N`` for an inherited file descriptor). Every event carries:

- ``v``: the schema version (:data:`SCHEMA_VERSION`, currently 1). Readers reject other major versions.
- ``type``: which event it is (the discriminator, below).
- ``t``: unix time in seconds (float) when the event was produced.
- ``run_id``: the run's identifier (given by the launcher through ``TORCHBOLT_RUN_ID``, else generated).

Event types, in the order a run produces them:

``run_started``      fn, target, max_epochs, max_steps, num_training_batches, log_dir, pid, torchbolt_version,
                     and the hardware: accelerator, devices (count), device_ids, strategy, precision, num_nodes,
                     world_size (all optional: older runtimes leave them out)
``epoch_started``    epoch, total (training batches in the epoch, None when unknown)
``progress``         stage, epoch, batch, total, global_step, metrics  (throttled by time; metrics are the
                     progress-bar metrics)
``metrics``          epoch, step, metrics, scope ("step" while training, "epoch" at an epoch's end)
``validation_end``   stage ("validate" or "test"), epoch, global_step, metrics (callback metrics)
``checkpoint_saved`` path, monitor, score, epoch, global_step, kind ("best" or "last")
``finished``         status ("success" or "interrupted"), epochs, global_step, duration_s, callback_metrics,
                     best_model_path, best_model_score, monitor, log_dir
``failed``           error_type, message, frames [{file, line, function, code}], formatted, phase
                     ("setup": before training started, e.g. an import error or a bad Trainer argument;
                     "run": while running), rank (the global rank that raised, set for multi-process runs;
                     frames and message are then that rank's)

A run ends with exactly one ``finished`` or ``failed`` event. Metric values are plain floats; values
that are not finite are written as JSON ``null``. The module imports only pydantic (never torch), so
the language server validates with the same models that the runtime writes with.
"""

from __future__ import annotations

import math
import os
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

__all__ = [
    "SCHEMA_VERSION", "CheckpointSaved", "EpochStarted", "Event", "EventError", "Failed", "Finished",
    "Frame", "Metrics", "Progress", "RunStarted", "ValidationEnd", "dump_event", "failed_from_exception",
    "new_run_id", "parse_event", "parse_events",
]

#: Version written in every event's ``v`` field; bump on incompatible changes.
SCHEMA_VERSION: Literal[1] = 1

Stage = Literal["train", "validate", "test", "predict", "sanity_check"]
Fn = Literal["fit", "validate", "test", "predict"]
MetricDict = dict[str, float | None]


class EventError(ValueError):
    """A line of the event stream that is not a valid event of this schema version."""


class _Event(BaseModel):
    # Unknown fields are kept (forward compatibility within a major version), never an error.
    model_config = ConfigDict(extra="allow", frozen=True)

    v: Literal[1] = SCHEMA_VERSION
    t: float = Field(default_factory=time.time)
    run_id: str


class RunStarted(_Event):
    """The runtime is about to run an entry point (after the model and Trainer were built)."""

    type: Literal["run_started"] = "run_started"
    fn: Fn
    target: str
    max_epochs: int | None = None
    max_steps: int | None = None
    num_training_batches: int | None = None
    log_dir: str | None = None
    pid: int
    torchbolt_version: str
    # Where the run executes (None from runtimes that predate these fields).
    accelerator: str | None = None  # "cpu", "cuda", "mps"
    devices: int | None = None  # devices per node
    device_ids: list[int] | None = None
    strategy: str | None = None  # "single_device", "ddp", "fsdp", ...
    precision: str | None = None  # "32-true", "bf16-mixed", ...
    num_nodes: int | None = None
    world_size: int | None = None  # processes in the run: devices x num_nodes


class EpochStarted(_Event):
    """A training epoch begins."""

    type: Literal["epoch_started"] = "epoch_started"
    epoch: int
    total: int | None = None


class Progress(_Event):
    """Where the run is now (throttled by time, so not one per batch)."""

    type: Literal["progress"] = "progress"
    stage: Stage
    epoch: int
    batch: int  # batches done in this epoch/stage (1-based count)
    total: int | None = None
    global_step: int
    metrics: MetricDict = Field(default_factory=dict)


class Metrics(_Event):
    """Values logged with self.log: step values while training, epoch values when an epoch ends."""

    type: Literal["metrics"] = "metrics"
    epoch: int
    step: int
    scope: Literal["step", "epoch"] = "epoch"
    metrics: MetricDict


class ValidationEnd(_Event):
    """A validation (or test) run ended; metrics are the Trainer's callback metrics at that point."""

    type: Literal["validation_end"] = "validation_end"
    stage: Literal["validate", "test"] = "validate"
    epoch: int
    global_step: int
    metrics: MetricDict


class CheckpointSaved(_Event):
    """A checkpoint file was written (seen as a change of the checkpoint callback's paths)."""

    type: Literal["checkpoint_saved"] = "checkpoint_saved"
    path: str
    kind: Literal["best", "last"] = "best"
    monitor: str | None = None
    score: float | None = None
    epoch: int
    global_step: int


class Finished(_Event):
    """The run ended without an error (``interrupted`` when it was stopped by a signal)."""

    type: Literal["finished"] = "finished"
    status: Literal["success", "interrupted"]
    epochs: int
    global_step: int
    duration_s: float
    callback_metrics: MetricDict = Field(default_factory=dict)
    best_model_path: str | None = None
    best_model_score: float | None = None
    monitor: str | None = None
    log_dir: str | None = None


class Frame(BaseModel):
    """One traceback frame: absolute file path, 1-based line, function name and the line's source."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    function: str
    code: str = ""


class Failed(_Event):
    """The run raised. Frames are outermost first, like a printed traceback."""

    type: Literal["failed"] = "failed"
    error_type: str
    message: str
    frames: list[Frame] = Field(default_factory=list)
    formatted: str = ""
    phase: Literal["setup", "run"] = "run"
    rank: int | None = None  # the global rank that raised (multi-process runs only)


Event = Annotated[
    RunStarted | EpochStarted | Progress | Metrics | ValidationEnd | CheckpointSaved | Finished | Failed,
    Field(discriminator="type"),
]
_EVENT = TypeAdapter(Event)
_EVENTS = TypeAdapter(list[Event])


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix (e.g. ``20260127-101502-3fa2c1``)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf: such values are written as null."""
    return value if math.isfinite(value) else None


def dump_event(event: _Event) -> bytes:
    """One event as a JSON line (bytes, newline-terminated)."""
    return event.__pydantic_serializer__.to_json(event) + b"\n"


def _version_error(line: bytes | str) -> EventError | None:
    import json

    try:
        raw = json.loads(line)
    except ValueError as exc:
        return EventError(f"not JSON: {exc}")
    if not isinstance(raw, dict):
        return EventError("an event must be a JSON object")
    v = raw.get("v")
    if v != SCHEMA_VERSION:
        return EventError(
            f"event schema version {v!r} is not supported (this reader understands v={SCHEMA_VERSION}); "
            "use the same torchbolt version for the runtime and the language server"
        )
    return None


def parse_event(line: bytes | str) -> Event:
    """Validate one JSON line into its event model; raises EventError naming the problem."""
    try:
        return _EVENT.validate_json(line)
    except ValidationError as exc:
        raise (_version_error(line) or EventError(f"invalid event: {exc.errors()[0]['msg']} "
                                                  f"at {exc.errors()[0]['loc']}")) from None


def parse_events(lines: Iterable[bytes]) -> tuple[list[Event], list[tuple[bytes, EventError]]]:
    """Validate many lines at once (one pydantic call for the batch, the fast path).

    Returns the valid events in order and the rejected lines with their errors; a bad line never
    loses the good ones around it.
    """
    batch = [ln for ln in lines if ln.strip()]
    if not batch:
        return [], []
    try:
        return _EVENTS.validate_json(b"[" + b",".join(batch) + b"]"), []
    except ValidationError:
        pass  # at least one line is bad: fall back to one call per line
    good: list[Event] = []
    bad: list[tuple[bytes, EventError]] = []
    for ln in batch:
        try:
            good.append(parse_event(ln))
        except EventError as exc:
            bad.append((ln, exc))
    return good, bad


def _frames(tb: Any) -> list[Frame]:
    return [Frame(file=os.path.abspath(f.filename), line=f.lineno or 0, function=f.name, code=(f.line or "").strip())
            for f in traceback.extract_tb(tb)]


def failed_from_exception(exc: BaseException, run_id: str, phase: Literal["setup", "run"] = "run") -> Failed:
    """A ``failed`` event for an exception, with its frames (a SyntaxError adds the offending line)."""
    frames = _frames(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        # The traceback of a SyntaxError ends in the import machinery; the user's line is on the exception.
        frames.append(Frame(file=os.path.abspath(exc.filename), line=exc.lineno, function="<module>",
                            code=(exc.text or "").strip()))
    formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    message = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return Failed(run_id=run_id, error_type=type(exc).__name__, message=message or type(exc).__name__,
                  frames=frames, formatted=formatted, phase=phase)


def metric_floats(metrics: Mapping[str, Any]) -> MetricDict:
    """Plain floats from a metrics dict of tensors or numbers (non-scalars are skipped)."""
    out: MetricDict = {}
    for name, value in metrics.items():
        try:
            number = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError):
            continue  # not a scalar: nothing sensible to show
        out[name] = finite_or_none(number)
    return out
