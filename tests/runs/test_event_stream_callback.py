"""EventStreamCallback against a stand-in Trainer: events, throttling, checkpoints, failures, broken pipes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from torchbolt import events as ev
from torchbolt.accelerators import CPUAccelerator
from torchbolt.callbacks.event_stream import (
    EventStreamCallback,
    SpawnedStreams,
    report_failure,
    report_to_live_streams,
)
from torchbolt.strategies.launchers import RankFailedError


class FakeTrainer(SimpleNamespace):
    """The attributes EventStreamCallback reads, as the real Trainer exposes them."""


def make_trainer(tmp_path: Path) -> FakeTrainer:
    return FakeTrainer(current_epoch=0, global_step=0, max_epochs=2, max_steps=-1, num_training_batches=3,
                       num_val_batches=[2], log_dir=str(tmp_path / "logs"), sanity_checking=False,
                       progress_bar_metrics={}, logged_metrics={}, callback_metrics={}, checkpoint_callback=None,
                       interrupted=False, accelerator=CPUAccelerator(),
                       strategy=SimpleNamespace(strategy_name="ddp", start_method="popen"), precision="32-true",
                       num_devices=2, device_ids=[0, 1], num_nodes=1, world_size=2)


def read(path: Path) -> list[ev.Event]:
    good, bad = ev.parse_events(path.read_bytes().splitlines())
    assert not bad
    return good


def fit(cb: EventStreamCallback, trainer: FakeTrainer, tmp_path: Path, epochs: int = 2) -> None:
    module = object()
    cb.setup(trainer, module, "fit")
    ckpt = SimpleNamespace(monitor="val_loss", best_model_path="", last_model_path="", best_model_score=None)
    trainer.checkpoint_callback = ckpt
    for epoch in range(epochs):
        trainer.current_epoch = epoch
        cb.on_train_epoch_start(trainer, module)
        for batch in range(3):
            trainer.global_step += 1
            trainer.logged_metrics = {"train_loss": 1.0 / trainer.global_step}
            trainer.progress_bar_metrics = {"train_loss": 1.0 / trainer.global_step}
            cb.on_train_batch_end(trainer, module, None, None, batch)
        val = 0.5 - 0.1 * epoch
        trainer.callback_metrics = {"val_loss": val, "train_loss": 1.0 / trainer.global_step}
        cb.on_validation_end(trainer, module)
        path = tmp_path / f"epoch={epoch}.ckpt"
        path.write_bytes(b"x")
        ckpt.best_model_path, ckpt.best_model_score = str(path), val
        cb.on_train_epoch_end(trainer, module)
    trainer.current_epoch = epochs
    cb.on_train_end(trainer, module)
    cb.teardown(trainer, module, "fit")


def test_a_fit_writes_the_documented_sequence(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="run1", target_name="m.py::M", progress_interval=0.0)
    fit(cb, make_trainer(tmp_path), tmp_path)
    events = read(out)
    types = [e.type for e in events]
    assert types[0] == "run_started" and types[-1] == "finished"
    started = events[0]
    assert isinstance(started, ev.RunStarted)
    assert (started.accelerator, started.devices, started.device_ids, started.strategy, started.precision,
            started.num_nodes, started.world_size) == ("cpu", 2, [0, 1], "ddp", "32-true", 1, 2)
    assert types.count("epoch_started") == 2 and types.count("validation_end") == 2
    assert types.count("checkpoint_saved") == 2
    assert all(e.run_id == "run1" for e in events)
    start = events[0]
    assert start.target == "m.py::M" and start.max_epochs == 2 and start.pid == os.getpid()
    progress = [e for e in events if isinstance(e, ev.Progress)]
    assert [p.batch for p in progress[:3]] == [1, 2, 3] and progress[0].total == 3
    epoch_metrics = [e for e in events if isinstance(e, ev.Metrics) and e.scope == "epoch"]
    assert [m.metrics["train_loss"] for m in epoch_metrics] == [pytest.approx(1 / 3), pytest.approx(1 / 6)]
    end = events[-1]
    assert end.status == "success" and end.epochs == 2 and end.global_step == 6
    assert end.best_model_path.endswith("epoch=1.ckpt") and end.best_model_score == pytest.approx(0.4)
    assert end.monitor == "val_loss" and end.callback_metrics["val_loss"] == pytest.approx(0.4)


def test_progress_is_throttled_by_time(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="r", progress_interval=3600.0, metrics_interval=3600.0)
    trainer = make_trainer(tmp_path)
    cb.setup(trainer, object(), "fit")
    cb.on_train_epoch_start(trainer, object())
    for batch in range(1000):
        trainer.global_step += 1
        cb.on_train_batch_end(trainer, object(), None, None, batch)
    cb.close()
    progress = [e for e in read(out) if isinstance(e, ev.Progress)]
    assert len(progress) == 1 and progress[0].batch == 1  # the first batch of an epoch is always reported


def test_buffered_writes_reach_the_file_within_the_flush_interval(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="r", progress_interval=0.0, flush_interval=0.05)
    trainer = make_trainer(tmp_path)
    cb.setup(trainer, object(), "fit")
    cb.on_train_epoch_start(trainer, object())
    cb.on_train_batch_end(trainer, object(), None, None, 0)
    size = out.stat().st_size
    assert len(read(out)) == 3  # run_started, epoch_started and the epoch's first progress: written at once
    cb.on_train_batch_end(trainer, object(), None, None, 1)
    assert out.stat().st_size == size  # buffered, not yet written
    time.sleep(0.06)
    cb.on_train_batch_end(trainer, object(), None, None, 2)
    assert len(read(out)) == 5


def test_exception_becomes_failed_with_frames(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="r")
    trainer = make_trainer(tmp_path)
    cb.setup(trainer, object(), "fit")
    try:
        raise RuntimeError("loss is nan")
    except RuntimeError as exc:
        cb.on_exception(trainer, object(), exc)
        cb.teardown(trainer, object(), "fit")
        report_failure(str(out), exc)  # the CLI reports too: still one terminal event
    events = read(out)
    assert [e.type for e in events] == ["run_started", "failed"]
    assert events[-1].message == "loss is nan" and events[-1].phase == "run"
    assert events[-1].frames[-1].function == "test_exception_becomes_failed_with_frames"


def test_interrupt_is_a_finished_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="r")
    trainer = make_trainer(tmp_path)
    cb.setup(trainer, object(), "fit")
    cb.on_exception(trainer, object(), KeyboardInterrupt())
    cb.teardown(trainer, object(), "fit")
    assert read(out)[-1].status == "interrupted"


def test_failure_before_the_trainer_exists_is_reported_as_setup(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    try:
        import not_a_module_anywhere  # noqa: F401
    except ImportError as exc:
        report_failure(str(out), exc, target_name="m.py::M")
    (event,) = read(out)
    assert event.type == "failed" and event.phase == "setup" and event.error_type == "ModuleNotFoundError"


def test_broken_pipe_never_breaks_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)  # the editor went away
    cb = EventStreamCallback(f"fd:{write_fd}", run_id="r", progress_interval=0.0, flush_interval=0.0)
    trainer = make_trainer(tmp_path)
    cb.setup(trainer, object(), "fit")
    for batch in range(5):
        cb.on_train_batch_end(trainer, object(), None, None, batch)
    assert not cb.enabled
    assert "closed" in capsys.readouterr().err
    os.close(write_fd)


def test_bad_targets_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected 'fd:N'"):
        EventStreamCallback("fd:abc")
    with pytest.raises(ValueError, match="not open"):
        EventStreamCallback("fd:987")


def test_a_second_entry_point_on_the_same_trainer_is_a_new_segment(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="r")
    trainer = make_trainer(tmp_path)
    fit(cb, trainer, tmp_path, epochs=1)
    cb.setup(trainer, object(), "test")
    trainer.callback_metrics = {"test_loss": 0.7}
    cb.on_test_end(trainer, object())
    cb.teardown(trainer, object(), "test")
    cb.close()
    events = read(out)
    starts = [e for e in events if e.type == "run_started"]
    assert [s.fn for s in starts] == ["fit", "test"]
    assert [e.type for e in events[-3:]] == ["run_started", "validation_end", "finished"]
    assert events[-2].stage == "test" and events[-2].metrics == {"test_loss": 0.7}


def test_another_ranks_failure_is_reported_with_its_frames_and_rank(tmp_path: Path) -> None:
    recorded = {"error_type": "ValueError", "message": "boom on rank 1",
                "frames": [{"file": "/w/model.py", "line": 21, "function": "training_step", "code": "raise ValueError"}]}
    failure = RankFailedError(1, 1, "Traceback (most recent call last): ...", recorded)
    # rank 0 only lost its connection; the Trainer raises the rank's failure from that error
    lost = RuntimeError("Connection closed by peer")
    lost.__cause__ = failure
    for exc, name in ((failure, "direct"), (lost, "as_cause")):
        out = tmp_path / f"{name}.jsonl"
        cb = EventStreamCallback(str(out), run_id="r")
        cb.setup(make_trainer(tmp_path), object(), "fit")
        cb.on_exception(make_trainer(tmp_path), object(), exc)
        cb.finish()
        cb.close()
        failed = read(out)[-1]
        assert isinstance(failed, ev.Failed)
        assert (failed.error_type, failed.message, failed.rank, failed.phase) == ("ValueError", "boom on rank 1", 1,
                                                                                  "run")
        assert [(f.file, f.line) for f in failed.frames] == [("/w/model.py", 21)]
        assert failed.formatted.startswith("rank 1 failed (exit code 1):\nTraceback")


def test_a_rank_that_left_no_record_is_still_named(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cb = EventStreamCallback(str(out), run_id="r")
    cb.setup(make_trainer(tmp_path), object(), "fit")
    report_to_live_streams(RankFailedError(1, -9, "(no traceback recorded)"))  # the os._exit path
    failed = read(out)[-1]
    assert isinstance(failed, ev.Failed) and failed.rank == 1 and failed.error_type == "RankFailedError"
    assert "rank 1 failed (exit code -9)" in failed.message
    assert not cb.enabled  # closed: nothing may follow the terminal event


def _forwarding(tmp_path: Path, name: str) -> tuple[EventStreamCallback, SpawnedStreams, int, Path]:
    """A launching process's stream, its SpawnedStreams, and a write end of the pipe as rank 0 would hold it."""
    out = tmp_path / f"{name}.jsonl"
    cb = EventStreamCallback(str(out), run_id="r")
    streams = SpawnedStreams([cb])
    rank0 = os.dup(streams.writers[str(out)].fileno())
    streams.start()  # closes this process's own write end
    return cb, streams, rank0, out


def _line(event: ev._Event) -> bytes:
    return ev.dump_event(event)


def test_spawned_rank_zero_events_are_copied_line_by_line_and_not_ended_twice(tmp_path: Path) -> None:
    cb, streams, rank0, out = _forwarding(tmp_path, "ok")
    started = ev.RunStarted(run_id="r", fn="fit", target="M", pid=1, torchbolt_version="x")
    failed = ev.Failed(run_id="r", error_type="ValueError", message="boom on rank 1", rank=1)
    data = _line(started) + _line(failed)
    os.write(rank0, data[:7])  # a line split across two writes arrives whole
    time.sleep(0.05)
    os.write(rank0, data[7:])
    os.close(rank0)  # rank 0 ended
    streams.close(RankFailedError(1, 1, "details"))
    report_failure(str(out), RuntimeError("the command line's own report"))  # no second terminal event
    cb.close()
    assert [e.type for e in read(out)] == ["run_started", "failed"] and read(out)[-1].rank == 1


def test_a_run_whose_rank_zero_died_silently_gets_its_end_from_the_launcher(tmp_path: Path) -> None:
    for name, exc, expected in (("killed", RankFailedError(0, -9, "(no traceback recorded)"), "failed"),
                                ("stopped", KeyboardInterrupt(), "finished")):
        cb, streams, rank0, out = _forwarding(tmp_path, name)
        os.write(rank0, _line(ev.RunStarted(run_id="r", fn="fit", target="M", pid=1, torchbolt_version="x"))
                 + _line(ev.Progress(run_id="r", stage="train", epoch=1, batch=2, total=4, global_step=6)))
        os.close(rank0)
        streams.close(exc)
        cb.close()
        events = read(out)
        assert [e.type for e in events] == ["run_started", "progress", expected]
        end = events[-1]
        if isinstance(end, ev.Failed):
            assert end.rank == 0 and "rank 0 failed (exit code -9)" in end.message
        else:
            assert isinstance(end, ev.Finished)
            assert (end.status, end.epochs, end.global_step) == ("interrupted", 1, 6)
