"""The event schema: every type round-trips, versions are checked, batches survive a bad line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from torchbolt import events as ev

SAMPLES = [
    ev.RunStarted(run_id="r", fn="fit", target="m.py::M", max_epochs=3, max_steps=-1, num_training_batches=4,
                  log_dir="/tmp/x", pid=1, torchbolt_version="0.1.0"),
    ev.EpochStarted(run_id="r", epoch=0, total=4),
    ev.Progress(run_id="r", stage="train", epoch=0, batch=2, total=4, global_step=2, metrics={"loss": 0.5}),
    ev.Metrics(run_id="r", epoch=0, step=4, scope="epoch", metrics={"loss": 0.25, "bad": None}),
    ev.ValidationEnd(run_id="r", epoch=0, global_step=4, metrics={"val_loss": 0.3}),
    ev.CheckpointSaved(run_id="r", path="/tmp/a.ckpt", monitor="val_loss", score=0.3, epoch=0, global_step=4),
    ev.Finished(run_id="r", status="success", epochs=3, global_step=12, duration_s=1.5,
                callback_metrics={"val_loss": 0.2}, best_model_path="/tmp/a.ckpt", best_model_score=0.2,
                monitor="val_loss", log_dir="/tmp/x"),
    ev.Failed(run_id="r", error_type="ValueError", message="boom",
              frames=[ev.Frame(file="/w/m.py", line=3, function="training_step", code="raise ValueError")],
              formatted="Traceback...", phase="run"),
    ev.RunStarted(run_id="r", fn="fit", target="m.py::M", pid=1, torchbolt_version="0.1.0", accelerator="cuda",
                  devices=2, device_ids=[0, 1], strategy="ddp", precision="bf16-mixed", num_nodes=2, world_size=4),
    ev.Failed(run_id="r", error_type="ValueError", message="boom on rank 1", phase="run", rank=1),
]


def test_hardware_and_rank_fields_are_optional() -> None:
    """Streams of runtimes without the hardware fields (or a failure without a rank) still parse."""
    old = ev.parse_event(b'{"v":1,"t":1.0,"run_id":"r","type":"run_started","fn":"fit","target":"m","pid":1,'
                         b'"torchbolt_version":"0"}')
    assert isinstance(old, ev.RunStarted) and old.accelerator is None and old.world_size is None
    failed = ev.parse_event(b'{"v":1,"t":1.0,"run_id":"r","type":"failed","error_type":"E","message":"m"}')
    assert isinstance(failed, ev.Failed) and failed.rank is None


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_round_trip(event: ev._Event) -> None:
    line = ev.dump_event(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    raw = json.loads(line)
    assert raw["v"] == ev.SCHEMA_VERSION and raw["type"] == event.type and raw["run_id"] == "r"
    assert isinstance(raw["t"], float)
    assert ev.parse_event(line) == event


def test_batch_parse_keeps_good_lines_around_a_bad_one() -> None:
    lines = [ev.dump_event(e).strip() for e in SAMPLES[:3]]
    lines.insert(1, b'{"v": 1, "type": "progress", "run_id": "r"}')  # missing fields
    lines.insert(3, b"not json")
    good, bad = ev.parse_events(lines)
    assert [e.type for e in good] == ["run_started", "epoch_started", "progress"]
    assert len(bad) == 2
    assert "not JSON" in str(bad[1][1])


def test_future_version_is_rejected_with_a_clear_message() -> None:
    raw = json.loads(ev.dump_event(SAMPLES[1]))
    raw["v"] = 2
    with pytest.raises(ev.EventError, match="version 2 is not supported"):
        ev.parse_event(json.dumps(raw))


def test_unknown_type_is_an_error_but_extra_fields_are_kept() -> None:
    with pytest.raises(ev.EventError):
        ev.parse_event('{"v": 1, "t": 1.0, "run_id": "r", "type": "teleported"}')
    event = ev.parse_event('{"v": 1, "t": 1.0, "run_id": "r", "type": "epoch_started", "epoch": 2, "later": 1}')
    assert event.epoch == 2


def test_failed_from_exception_has_frames_and_syntax_error_line(tmp_path) -> None:
    def inner() -> None:
        raise ZeroDivisionError("division by zero")

    try:
        inner()
    except ZeroDivisionError as exc:
        failed = ev.failed_from_exception(exc, "r")
    assert failed.error_type == "ZeroDivisionError" and failed.message == "division by zero"
    assert failed.frames[-1].function == "inner" and failed.frames[-1].code.startswith("raise ZeroDivisionError")
    assert "Traceback" in failed.formatted

    bad = tmp_path / "broken.py"
    bad.write_text("x = 1\ndef f(:\n    pass\n")
    try:
        compile(bad.read_text(), str(bad), "exec")
    except SyntaxError as exc:
        failed = ev.failed_from_exception(exc, "r", phase="setup")
    assert failed.frames[-1].file == str(bad) and failed.frames[-1].line == 2 and failed.phase == "setup"


def test_metric_floats_handles_non_finite_and_non_scalars() -> None:
    class Scalar:
        def __init__(self, v: float) -> None:
            self.v = v

        def item(self) -> float:
            return self.v

    out = ev.metric_floats({"a": Scalar(0.5), "b": float("nan"), "c": [1, 2], "d": 3})
    assert out == {"a": 0.5, "b": None, "d": 3.0}


def test_events_module_does_not_import_torch() -> None:
    code = "import sys, torchbolt.events; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
