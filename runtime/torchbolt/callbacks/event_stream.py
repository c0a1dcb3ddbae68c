"""EventStreamCallback: writes a run's events as versioned JSON lines (schema: `torchbolt.events`).

The CLI adds it for ``--events TARGET`` or when ``TORCHBOLT_EVENTS`` is set; editors read the stream to
show progress, metrics and failures. Per-step cost is a clock read and a comparison: progress events are
throttled by time, writes are buffered and flushed at most every ``flush_interval`` seconds (and at
once for events that matter: epoch ends, checkpoints, the end of the run). A closed reader never
breaks training: the stream switches itself off on the first write error.
"""

from __future__ import annotations

import atexit
import math
import os
import signal
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Literal, cast

from torchbolt import events as ev
from torchbolt.callbacks.callback import Callback

if TYPE_CHECKING:
    from torchbolt.core.module import LightningModule
    from torchbolt.trainer.trainer import Trainer

__all__ = ["EventStreamCallback", "SpawnedStreams", "adopt_spawned_streams", "open_target", "report_failure",
           "report_to_live_streams", "watch_lifeline"]

#: Set by the editor's language server: the read end of a pipe whose write end only the server holds.
LIFELINE_ENV = "TORCHBOLT_LIFELINE"
#: Seconds between the graceful stop (SIGTERM) and SIGKILL of the process group once the server is gone.
LIFELINE_GRACE_S = 10.0
_lifeline: list[threading.Thread] = []


def watch_lifeline(grace_s: float = LIFELINE_GRACE_S) -> bool:
    """Stop this run when the editor's server is gone (also after a SIGKILL of the server).

    Only when ``$TORCHBOLT_LIFELINE`` names an open ``fd:N``: a daemon thread blocks reading it and, at
    EOF, asks the run to stop (SIGTERM: the same path as a terminal's stop), then kills the process
    group after ``grace_s`` if the run is still there. Idempotent; returns True when a watcher runs.
    """
    if _lifeline:
        return True
    value = os.environ.get(LIFELINE_ENV, "")
    if not value.startswith("fd:"):
        return False
    try:
        fd = int(value[3:])
        os.fstat(fd)
    except (ValueError, OSError):
        return False

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass  # the server never writes: only EOF matters
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        # Our own group only when we lead it (the launcher's new session); never a shell's group.
        if hasattr(os, "killpg") and os.getpgrp() == os.getpid():
            os.killpg(os.getpgrp(), signal.SIGKILL)
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="torchbolt-lifeline", daemon=True)
    thread.start()
    _lifeline.append(thread)
    return True

# Callbacks by target (kept after they close), so a failure reported by the CLI reaches the run's own
# stream, and a run that already wrote its terminal event gets no second one.
_LIVE: dict[str, EventStreamCallback] = {}
# Every callback of this process, also the copies made by unpickling (in a process started with 'spawn' or
# 'forkserver'): rank 0 of a run in started processes gives them the pipes its launching process reads.
_INSTANCES: weakref.WeakSet[EventStreamCallback] = weakref.WeakSet()


def open_target(target: str | os.PathLike[str]) -> int:
    """Open an event target for writing and return its file descriptor.

    ``fd:N`` uses inherited descriptor N (a pipe from the launcher); anything else is a file path,
    created or appended to.
    """
    text = os.fspath(target)
    if text.startswith("fd:"):
        try:
            fd = int(text[3:])
        except ValueError:
            raise ValueError(f"bad event target {text!r}: expected 'fd:N' with N an integer, or a file path") from None
        try:
            os.fstat(fd)
        except OSError:
            raise ValueError(f"event target {text!r}: file descriptor {fd} is not open in this process "
                             "(the launcher must pass it to the child)") from None
        return fd
    parent = os.path.dirname(os.path.abspath(text))
    os.makedirs(parent, exist_ok=True)
    return os.open(text, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (list, tuple)):  # per-dataloader counts: report the total
        value = sum(v for v in value if isinstance(v, (int, float)) and math.isfinite(v))
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    return value if isinstance(value, int) else None


def _hardware(trainer: Trainer) -> dict[str, Any]:
    """The run_started hardware fields, from the Trainer's public surface (names as the Trainer takes them)."""
    from torchbolt.accelerators.accelerator import ACCELERATOR_CLASSES

    accelerator = trainer.accelerator
    kind = next((name for name, cls in ACCELERATOR_CLASSES.items() if isinstance(accelerator, cls)),
                type(accelerator).__name__.removesuffix("Accelerator").lower())
    strategy = trainer.strategy
    name = str(getattr(strategy, "strategy_name", type(strategy).__name__))
    start_method = getattr(strategy, "start_method", "popen")
    if name == "ddp" and start_method != "popen":
        name = f"ddp_{start_method}"  # 'ddp_spawn' / 'ddp_fork': how the user asked for it
    return {"accelerator": kind, "devices": int(trainer.num_devices), "device_ids": [int(i) for i in trainer.device_ids],
            "strategy": name, "precision": str(trainer.precision), "num_nodes": int(trainer.num_nodes),
            "world_size": int(trainer.world_size)}


class EventStreamCallback(Callback):
    """Streams run events to ``target`` (a file path or ``fd:N``) as JSON lines.

    Args:
        target: where to write: a path (appended to) or ``fd:N``.
        run_id: identifier written in every event; default ``TORCHBOLT_RUN_ID`` or a fresh id.
        target_name: what is being run (e.g. ``model.py::LitModel``), for ``run_started``.
        progress_interval: minimum seconds between two ``progress`` events.
        metrics_interval: minimum seconds between two step-scope ``metrics`` events.
        flush_interval: maximum seconds a buffered event waits before it is written.
    """

    # Run after the LightningModule's on_train_epoch_end so its epoch-end logs are in the epoch's metrics.
    _monitoring = True

    def __init__(self, target: str | os.PathLike[str], run_id: str | None = None, target_name: str = "",
                 progress_interval: float = 0.1, metrics_interval: float = 1.0, flush_interval: float = 0.25,
                 ) -> None:
        self.target = os.fspath(target)
        self.run_id = run_id or os.environ.get("TORCHBOLT_RUN_ID") or ev.new_run_id()
        self.target_name = target_name
        self.progress_interval = progress_interval
        self.metrics_interval = metrics_interval
        self.flush_interval = flush_interval
        self._fd: int | None = open_target(self.target)
        self._owns_fd = not self.target.startswith("fd:")
        self._buffer = bytearray()
        self._last_flush = time.monotonic()
        self._next_progress = 0.0
        self._next_metrics = 0.0
        self._start = time.monotonic()
        self._fn: ev.Fn = "fit"
        self._started = False
        self._ended = False
        self._pending_exc: BaseException | None = None
        self._seen_ckpts: set[str] = set()
        self._saved_at: tuple[int, int] | None = None
        self._trainer: Trainer | None = None
        _LIVE[self.target] = self
        _INSTANCES.add(self)
        atexit.register(self._at_exit)
        watch_lifeline()  # started by an editor: end with it

    def __getstate__(self) -> dict[str, Any]:
        # A copy made by pickling (a process started with strategy='ddp_spawn') cannot use this process's
        # descriptor (that number may be another file there): the copy writes nothing.
        state = dict(self.__dict__)
        state["_fd"] = None
        state.pop("_pipe", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _INSTANCES.add(self)

    # ------------------------------------------------------------------------------------------
    # writing
    # ------------------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """False once the reader went away (the stream stopped; training goes on)."""
        return self._fd is not None

    def emit(self, event: ev._Event, flush: bool = False) -> None:
        """Queue one event; write it now when ``flush`` or when the buffer is older than flush_interval."""
        if self._fd is None:
            return
        self._buffer += ev.dump_event(event)
        now = time.monotonic()
        if flush or now - self._last_flush >= self.flush_interval or len(self._buffer) > 1 << 16:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Write everything buffered; a write error disables the stream instead of raising."""
        self._last_flush = time.monotonic() if now is None else now
        if self._fd is None or not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        try:
            done = 0
            while done < len(data):
                done += os.write(self._fd, data[done:] if done else data)
        except OSError as exc:  # BrokenPipeError when the editor stopped reading
            print(f"torchbolt: event stream {self.target} closed ({exc.strerror}); events are no longer written",
                  file=sys.stderr)
            self._close_fd()

    def close(self) -> None:
        """Flush and close the stream (idempotent)."""
        self.flush()
        self._close_fd()

    def _close_fd(self) -> None:
        # Stays in _LIVE: a later report_failure for this target must not start a second terminal event.
        fd, self._fd = self._fd, None
        if fd is not None and self._owns_fd:
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------------------------------------
    # helpers reading the Trainer (only at throttled moments: these may sync tensors)
    # ------------------------------------------------------------------------------------------
    def _counters(self, trainer: Trainer) -> tuple[int, int]:
        return int(trainer.current_epoch), int(trainer.global_step)

    def _check_checkpoints(self, trainer: Trainer) -> None:
        cb = trainer.checkpoint_callback
        if cb is None:
            return
        epoch, step = self._counters(trainer)
        if self._saved_at is not None:  # the counters the checkpoint itself recorded (see on_save_checkpoint)
            epoch, step = self._saved_at
        monitor = getattr(cb, "monitor", None)
        kinds: tuple[tuple[Literal["best", "last"], str], ...] = (("best", "best_model_path"),
                                                                  ("last", "last_model_path"))
        for kind, attr in kinds:
            path = getattr(cb, attr, "") or ""
            if not path or path in self._seen_ckpts or not os.path.exists(path):
                continue
            self._seen_ckpts.add(path)
            score = getattr(cb, "best_model_score", None) if kind == "best" else None
            if score is None and kind == "last":
                score = getattr(cb, "current_score", None)
            self.emit(ev.CheckpointSaved(run_id=self.run_id, path=os.path.abspath(path), kind=kind, monitor=monitor,
                                         score=self._score(score), epoch=epoch, global_step=step), flush=True)
        self._saved_at = None

    @staticmethod
    def _score(value: Any) -> float | None:
        if value is None:
            return None
        try:
            return ev.finite_or_none(float(value.item() if hasattr(value, "item") else value))
        except (TypeError, ValueError):
            return None

    def _total(self, trainer: Trainer, stage: str) -> int | None:
        from torchbolt.callbacks.progress import stage_batches

        return _int_or_none(stage_batches(trainer, stage))

    def _progress(self, trainer: Trainer, stage: ev.Stage, batch_idx: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_progress:
            return
        first = self._next_progress == 0.0  # the first report of an epoch goes out at once
        self._next_progress = now + self.progress_interval
        epoch, step = self._counters(trainer)
        metrics = ev.metric_floats(trainer.progress_bar_metrics)
        self.emit(ev.Progress(run_id=self.run_id, stage=stage, epoch=epoch, batch=batch_idx + 1,
                              total=self._total(trainer, stage), global_step=step, metrics=metrics), flush=first)

    # ------------------------------------------------------------------------------------------
    # hooks
    # ------------------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._trainer = trainer
        self._fn = cast(ev.Fn, stage) if stage in ("fit", "validate", "test", "predict") else "fit"
        self._start = time.monotonic()
        if self._started and not self._ended:
            return
        # A new entry point on the same Trainer (a script's fit, then test) starts a new segment of the stream.
        self._started, self._ended, self._pending_exc = True, False, None
        self._next_progress = 0.0
        from torchbolt import __version__

        self.emit(ev.RunStarted(
            run_id=self.run_id, fn=self._fn, target=self.target_name or type(pl_module).__name__,
            max_epochs=_int_or_none(trainer.max_epochs),
            max_steps=_int_or_none(trainer.max_steps),
            num_training_batches=_int_or_none(trainer.num_training_batches),
            log_dir=self._log_dir(trainer), pid=os.getpid(), torchbolt_version=__version__,
            **self._hardware(trainer)), flush=True)

    @staticmethod
    def _hardware(trainer: Trainer) -> dict[str, Any]:
        try:
            return _hardware(trainer)
        except Exception as exc:  # another engine's Trainer (--engine lightning) may lack one: leave them out
            print(f"torchbolt: the run's hardware is not reported ({type(exc).__name__}: {exc})", file=sys.stderr)
            return {}

    @staticmethod
    def _log_dir(trainer: Trainer) -> str | None:
        try:
            log_dir = trainer.log_dir
        except Exception:  # a logger without a folder yet: not worth failing the run for
            return None
        return os.path.abspath(log_dir) if log_dir else None

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        # Called while a checkpoint is being written (its path is not known yet): keep the epoch and step it
        # records; the path is picked up from the checkpoint callback at the next hook.
        epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
        if isinstance(epoch, int) and isinstance(step, int):
            self._saved_at = (epoch, step)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check_checkpoints(trainer)  # a save at the end of the previous epoch, after our epoch-end hook
        epoch, _ = self._counters(trainer)
        self.emit(ev.EpochStarted(run_id=self.run_id, epoch=epoch, total=self._total(trainer, "train")), flush=True)
        self._next_progress = 0.0  # the first batch of each epoch is always reported

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._progress(trainer, "train", batch_idx)
        now = time.monotonic()
        if now >= self._next_metrics:
            self._next_metrics = now + self.metrics_interval
            epoch, step = self._counters(trainer)
            metrics = ev.metric_floats(trainer.logged_metrics)
            if metrics:
                self.emit(ev.Metrics(run_id=self.run_id, epoch=epoch, step=step, scope="step", metrics=metrics))

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        stage: ev.Stage = "sanity_check" if trainer.sanity_checking else "validate"
        self._progress(trainer, stage, batch_idx)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._progress(trainer, "test", batch_idx)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._progress(trainer, "predict", batch_idx)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        epoch, step = self._counters(trainer)
        metrics = ev.metric_floats(trainer.callback_metrics)
        self.emit(ev.ValidationEnd(run_id=self.run_id, stage="validate", epoch=epoch, global_step=step,
                                   metrics=metrics), flush=True)
        self._check_checkpoints(trainer)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch, step = self._counters(trainer)
        metrics = ev.metric_floats(trainer.callback_metrics)
        self.emit(ev.ValidationEnd(run_id=self.run_id, stage="test", epoch=epoch, global_step=step,
                                   metrics=metrics), flush=True)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch, step = self._counters(trainer)
        metrics = ev.metric_floats(trainer.logged_metrics)
        self.emit(ev.Metrics(run_id=self.run_id, epoch=epoch, step=step, scope="epoch", metrics=metrics), flush=True)
        self._check_checkpoints(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check_checkpoints(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        # The terminal event waits for teardown (or process exit), so checkpoints that other callbacks
        # write while handling the exception are reported before it.
        self._pending_exc = exception
        self.flush()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.finish(trainer)

    # ------------------------------------------------------------------------------------------
    # the end of the run
    # ------------------------------------------------------------------------------------------
    def finish(self, trainer: Trainer | None = None, exception: BaseException | None = None) -> None:
        """Write the run's terminal event (``finished`` or ``failed``) once per entry point (the stream stays
        open for a later entry point of the same Trainer and is closed at process exit)."""
        if self._ended or self._fd is None:
            return
        trainer = trainer or self._trainer
        exc = exception or self._pending_exc
        if trainer is not None:
            self._check_checkpoints(trainer)
        if exc is not None:  # Trainer.interrupted is also true after an error: the exception type decides
            interrupted = isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit)
                                                                 and exc.code not in (0, None))
        else:
            interrupted = trainer.interrupted
        if exc is not None and not interrupted:
            self.report_exception(exc, phase="run")
            return
        self._ended = True
        epoch, step = self._counters(trainer) if trainer is not None else (0, 0)
        cb = trainer.checkpoint_callback
        best = getattr(cb, "best_model_path", "") or None
        # current_epoch counts completed epochs once fit is over (Lightning semantics)
        epochs = epoch
        self.emit(ev.Finished(
            run_id=self.run_id, status="interrupted" if interrupted else "success", epochs=epochs, global_step=step,
            duration_s=round(time.monotonic() - self._start, 3),
            callback_metrics=ev.metric_floats(trainer.callback_metrics),
            best_model_path=os.path.abspath(best) if best else None,
            best_model_score=self._score(getattr(cb, "best_model_score", None)),
            monitor=getattr(cb, "monitor", None), log_dir=self._log_dir(trainer) if trainer is not None else None,
        ), flush=True)

    def report_exception(self, exc: BaseException, phase: Literal["setup", "run"] = "setup") -> None:
        """Write a ``failed`` event for ``exc`` (the CLI calls this for errors that happen before training
        starts, such as an import error or a bad Trainer argument)."""
        if self._ended or self._fd is None:
            return
        self._ended = True
        # Once the run started, even a "setup" report (from the CLI's error handler) happened in the run.
        where: Literal["setup", "run"] = "setup" if phase == "setup" and not self._started else "run"
        self.emit(_failed_event(exc, self.run_id, where), flush=True)

    # ------------------------------------------------------------------------------------------
    # events written by rank 0 of a run in started processes ('ddp_spawn'), copied here by SpawnedStreams
    # ------------------------------------------------------------------------------------------
    def write_forwarded(self, lines: bytes) -> None:
        """Write whole event lines that rank 0's copy of this stream produced, keeping track of the run's
        segments (run_started ... finished/failed) so that this process adds no second terminal event."""
        import json

        if self._fd is None:  # the editor stopped reading: nothing to track or keep
            return
        for line in lines.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("type") if isinstance(event, dict) else None
            if kind == "run_started":
                self._started, self._ended, self._start = True, False, time.monotonic()
                self._forwarded_at = (0, 0)
            elif kind in ("finished", "failed"):
                self._ended = True
            if isinstance(event, dict) and isinstance(event.get("global_step"), int):
                self._forwarded_at = (int(event.get("epoch") or 0), event["global_step"])
        self._buffer += lines
        self.flush()

    def end_forwarded(self, exc: BaseException) -> None:
        """The started processes ended with `exc` (in the launching process) and rank 0 wrote no terminal event
        (it was killed, or stopped before its stream could report): write it here, once."""
        if self._ended or self._fd is None:
            return
        interrupted = isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and exc.code not in (0, None))
        if not interrupted:
            self.report_exception(exc, phase="run")
            return
        self._ended = True
        epoch, step = getattr(self, "_forwarded_at", (0, 0))
        self.emit(ev.Finished(run_id=self.run_id, status="interrupted", epochs=epoch, global_step=step,
                              duration_s=round(time.monotonic() - self._start, 3)), flush=True)

    def _at_exit(self) -> None:
        # Entry points that raise may skip teardown; the process exit still writes the terminal event.
        try:
            if self._started and not self._ended and self._trainer is not None:
                self.finish()
            self.close()
        except Exception as exc:  # exiting anyway: say why the stream is incomplete, don't mask the exit
            print(f"torchbolt: could not finish the event stream {self.target}: {exc}", file=sys.stderr)


def _failed_event(exc: BaseException, run_id: str, phase: Literal["setup", "run"]) -> ev.Failed:
    """The ``failed`` event for `exc`; when another rank raised first (`RankFailedError`, possibly as the
    cause of this rank's lost-connection error), that rank's error and frames, with its rank."""
    from torchbolt.strategies.launchers import RankFailedError

    rank_failure = exc if isinstance(exc, RankFailedError) else None
    if rank_failure is None and isinstance(exc.__cause__, RankFailedError):
        rank_failure = exc.__cause__
    if rank_failure is None:
        event = ev.failed_from_exception(exc, run_id, phase)
        rank = os.environ.get("RANK")  # this process is one rank of several: say which
        if rank is not None and rank.isdigit() and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            event = event.model_copy(update={"rank": int(rank)})
        return event
    recorded = rank_failure.failure or {}
    try:
        frames = [ev.Frame.model_validate(f) for f in recorded.get("frames") or []]
    except ValueError:
        frames = []
    return ev.Failed(run_id=run_id, error_type=str(recorded.get("error_type") or type(rank_failure).__name__),
                     message=str(recorded.get("message") or rank_failure), frames=frames,
                     formatted=f"rank {rank_failure.rank} failed (exit code {rank_failure.returncode}):\n"
                               f"{rank_failure.details}", phase="run", rank=rank_failure.rank)


class SpawnedStreams:
    """In the launching process of a run in started processes ('ddp_spawn', 'ddp_fork'): rank 0's copy of each
    event stream writes into a pipe made here, and a thread copies whole lines into the stream.

    A spawned process cannot write the launching process's descriptor itself (an editor's ``fd:N`` is not
    inherited, and the number may name another file there). Through the pipe, this process stays the only
    writer of the editor's sink, also under fork: it sees the run's terminal event go by, so a run whose rank 0
    could not report its end (killed, or stopped first) gets one from here, and a run that reported gets no
    second one (not even from the command line's own error report).
    """

    def __init__(self, streams: list[EventStreamCallback]) -> None:
        from multiprocessing import Pipe

        self._streams = {s.target: s for s in streams if s.enabled}
        pipes = {target: Pipe(duplex=False) for target in self._streams}
        self._readers = {target: reader for target, (reader, _) in pipes.items()}
        #: What the started processes get (pickled with them): the write end of each stream's pipe, by target.
        self.writers = {target: writer for target, (_, writer) in pipes.items()}
        self._threads: dict[str, threading.Thread] = {}

    def start(self) -> None:
        """Once the processes are started (they hold their own write ends): copy their lines from now on."""
        for writer in self.writers.values():
            writer.close()  # the pipe ends (EOF) when the last started process does
        for target, reader in self._readers.items():
            thread = threading.Thread(target=_copy_lines, args=(reader, self._streams[target]), daemon=True,
                                      name="torchbolt-event-forwarder")
            thread.start()
            self._threads[target] = thread

    def close(self, exc: BaseException | None, timeout: float = 5.0) -> None:
        """After the processes ended: copy what is left, then, when the run failed and rank 0 did not report it,
        report `exc` (the error naming the rank that failed)."""
        for writer in self.writers.values():
            writer.close()
        deadline = time.monotonic() + timeout
        for target, reader in self._readers.items():
            thread = self._threads.get(target)
            if thread is not None:
                thread.join(max(deadline - time.monotonic(), 0.01))
            if thread is None or not thread.is_alive():
                reader.close()
        if exc is not None:
            for stream in self._streams.values():
                stream.end_forwarded(exc)


def _copy_lines(reader: Any, stream: EventStreamCallback) -> None:
    """Thread body: read the pipe until EOF, handing whole lines to `stream`."""
    fd = reader.fileno()
    pending = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        complete, newline, pending = (pending + chunk).rpartition(b"\n")
        if newline:
            stream.write_forwarded(complete + newline)


def adopt_spawned_streams(writers: dict[str, Any], rank_zero: bool, forked: bool) -> None:
    """In a process a SpawnLauncher started: on global rank 0, make the run's event streams (the unpickled copies,
    or in a forked process the inherited ones) write into the pipes their launching process reads (see
    SpawnedStreams); elsewhere, let go of the pipes."""
    if not rank_zero:
        for writer in writers.values():
            writer.close()
        return
    for stream in list(_INSTANCES):
        writer = writers.get(stream.target)
        if writer is not None:
            # An inherited descriptor stays open for the launching process: this process no longer writes it.
            stream._fd, stream._owns_fd = writer.fileno(), False
            stream._pipe = writer  # the connection closes its descriptor when collected: keep it
            if not forked:
                atexit.register(stream._at_exit)


def report_to_live_streams(exc: BaseException) -> None:
    """Write `exc` as the terminal event of every open stream whose run has not ended, and close them.

    For a process about to end without running atexit handlers (os._exit after another rank failed).
    """
    for stream in list(_LIVE.values()):
        try:
            if stream.enabled and not stream._ended:
                stream.report_exception(exc, phase="run")
            stream.close()
        except Exception as err:  # noqa: BLE001 - exiting anyway
            print(f"torchbolt: could not report the failure to {stream.target}: {err}", file=sys.stderr)


def report_failure(target: str | os.PathLike[str], exc: BaseException, target_name: str = "") -> None:
    """Report an exception that ends the process to the event stream at `target` as a ``failed`` event.

    The CLI calls this from its error handlers. When the run's EventStreamCallback exists it writes the
    event (at most one terminal event per run); otherwise (the failure came before the Trainer was built:
    an import error in the user's file, a bad argument) a ``failed`` event with phase "setup" is written
    directly. Never raises: reporting must not hide the original error.
    """
    try:
        live = _LIVE.get(os.fspath(target))
        if live is not None:
            live.report_exception(exc, phase="setup")  # no-op when the run already ended
            return
        stream = EventStreamCallback(target, target_name=target_name)
        stream.report_exception(exc, phase="setup")
        stream.close()
    except Exception as err:  # the stream is a side channel: the caller still reports `exc` itself
        print(f"torchbolt: could not write the failure to the event stream {target}: {err}", file=sys.stderr)
