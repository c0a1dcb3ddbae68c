"""strategy='ddp_spawn' and 'ddp_fork' on 2 gloo processes (CPU): the Trainer starts the ranks with
torch.multiprocessing, and the launching process gets rank 0's results back.

The scripts (tests/runtime/hw_scripts/spawn_script.py) run in fresh processes with a hard timeout; nothing
here may hang CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from _hw_helpers import ROOT, SCRIPTS, TIMEOUT_S, assert_no_process_left, finish, script_env

SPAWN = str(SCRIPTS / "spawn_script.py")
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")


def _start(out: Path, *args: str, session: bool = False, **env: str) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, SPAWN, str(out), *args], cwd=out, env=script_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=session)


def _diff(a: Path, b: Path) -> float:
    wa, wb = torch.load(a), torch.load(b)
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("spawn")
    procs = {
        # fit_script's model on one process with batch 8 is the reference for 2 ranks with batch 4
        "single": subprocess.Popen([sys.executable, str(SCRIPTS / "fit_script.py"), str(root / "single"),
                                    "--devices", "1", "--batch", "8"], cwd=root, env=script_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
        # as a script the editor runs: the Trainer streams events to TORCHBOLT_EVENTS
        "ddp_spawn": _start(root / "ddp_spawn", "--strategy", "ddp_spawn", TORCHBOLT_EVENTS=str(root / "spawn.jsonl")),
        "ddp_fork": _start(root / "ddp_fork", "--strategy", "ddp_fork", TORCHBOLT_EVENTS=str(root / "fork.jsonl")),
    }
    results: dict[str, Any] = {name: finish(proc) for name, proc in procs.items()}
    results["root"] = root
    return results


def _ok(runs: dict[str, Any], name: str) -> Path:
    code, err = runs[name]
    assert code == 0, f"{name} failed:\n{err[-4000:]}"
    return runs["root"] / name  # type: ignore[no-any-return]


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork"])
def test_two_ranks_batch_b_equal_one_process_batch_2b(runs: dict[str, Any], strategy: str) -> None:
    """The weights the launching process's module holds after fit are the trained ones."""
    single, spawned = _ok(runs, "single"), _ok(runs, strategy)
    assert _diff(single / "weights.pt", spawned / "weights.pt") < 1e-6
    assert len(list(spawned.glob("pid*"))) == 6  # fit, validate and predict each ran on 2 new processes


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork"])
def test_rank_zero_results_come_back_to_the_launching_process(runs: dict[str, Any], strategy: str) -> None:
    out = _ok(runs, strategy)
    parent = json.loads((out / "parent.json").read_text())
    fit = parent["fit"]
    assert set(fit["callback_metrics"]) == {"rank_value", "train_loss"}
    assert fit["callback_metrics"]["rank_value"] == 0.5  # sync_dist: the mean of ranks 0 and 1
    assert fit["logged_metrics"] == fit["callback_metrics"]
    assert fit["best_model_path"] == str(out / "ckpts" / "epoch=1-step=8.ckpt")
    assert os.path.exists(fit["best_model_path"])
    assert fit["best_model_score"] == pytest.approx(fit["callback_metrics"]["train_loss"])
    assert fit["state"] == ["fit", "finished"]
    assert (fit["global_step"], fit["current_epoch"]) == (8, 2)
    assert fit["log_dir"] == str(out / "logs" / "lightning_logs" / "version_0")  # the folder rank 0 wrote
    assert [p.name for p in (out / "logs" / "lightning_logs").iterdir()] == ["version_0"]
    validate = parent["validate"]
    assert validate["returned"] == [validate["callback_metrics"]] and set(validate["callback_metrics"]) == {"val_loss"}
    assert validate["state"] == ["validate", "finished"]
    assert validate["ckpt_path"] == fit["best_model_path"]  # validate() without a model restored the best checkpoint
    assert parent["predict"] == {"batches": 8, "max_abs_diff": 0.0}  # rank 0's predictions, from the trained weights


def _events(path: Path) -> list[dict[str, Any]]:
    from torchbolt.events import parse_events

    lines = path.read_bytes().splitlines()
    parsed, bad = parse_events(lines)
    assert bad == [] and len(parsed) == len(lines)  # every line is a valid event of the schema
    return [json.loads(line) for line in lines]


def _shape(events: list[dict[str, Any]]) -> list[str]:
    """The event types in order, with runs of progress/metrics events collapsed (their number depends on time)."""
    shape: list[str] = []
    for event in events:
        kind = event["type"]
        if not (kind in ("progress", "metrics") and shape and shape[-1] == kind):
            shape.append(kind)
    return shape


def test_the_editor_event_stream_comes_from_rank_zero_only(runs: dict[str, Any]) -> None:
    """ddp_fork: rank 0's forked process writes the inherited stream, once per entry point; rank 1 writes none.
    ddp_spawn: rank 0's events reach the launching process through a pipe and it writes them: the same
    stream, event for event."""
    _ok(runs, "ddp_fork")
    fork = _events(runs["root"] / "fork.jsonl")
    kinds = [e["type"] for e in fork]
    assert kinds.count("run_started") == 3 and kinds.count("finished") == 3  # fit, validate, predict
    assert [e["fn"] for e in fork if e["type"] == "run_started"] == ["fit", "validate", "predict"]
    assert all(e["status"] == "success" for e in fork if e["type"] == "finished")
    _ok(runs, "ddp_spawn")
    spawn = _events(runs["root"] / "spawn.jsonl")
    assert _shape(spawn) == _shape(fork)
    started = [e for e in spawn if e["type"] == "run_started"]
    assert [e["strategy"] for e in started] == ["ddp_spawn"] * 3 and started[0]["world_size"] == 2
    assert len({e["pid"] for e in started}) == 3  # each entry point ran in its own new rank-0 process
    finished = [e for e in spawn if e["type"] == "finished"]
    assert [e["status"] for e in finished] == ["success"] * 3 and finished[0]["global_step"] == 8
    saved = [e for e in spawn if e["type"] == "checkpoint_saved"]
    assert saved and saved[-1]["path"] == str(runs["root"] / "ddp_spawn" / "ckpts" / "epoch=1-step=8.ckpt")


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork"])
def test_a_rank_that_raises_ends_every_process_promptly_with_its_traceback(tmp_path: Path, strategy: str) -> None:
    start = time.monotonic()
    events = tmp_path / "events.jsonl"
    code, err = finish(_start(tmp_path, "--strategy", strategy, "--crash-rank", "1", "--epochs", "50",
                              TORCHBOLT_EVENTS=str(events)))
    assert code != 0
    assert time.monotonic() - start < 30 + 15  # < 30 s of run time, plus interpreter start-up of 3 processes
    assert "RankFailedError: rank 1 failed" in err and "ValueError: boom on purpose on rank 1" in err
    assert 'fit_script.py", line' in err  # the raising rank's own traceback
    assert not (tmp_path / "parent.json").exists()
    assert_no_process_left(tmp_path)
    # rank 0's stream reports rank 1's error at its raising line, not a lost connection; one terminal event
    written = _events(events)
    assert [e["type"] for e in written].count("run_started") == 1
    ends = [e for e in written if e["type"] in ("finished", "failed")]
    assert len(ends) == 1 and ends[0]["type"] == "failed"
    assert ends[0]["rank"] == 1 and ends[0]["error_type"] == "ValueError"
    assert ends[0]["frames"][-1]["file"].endswith("fit_script.py")


@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp_fork"])
def test_the_command_line_streams_a_rank_one_crash_as_one_failed_event(tmp_path: Path, strategy: str) -> None:
    """`torchbolt fit --events FILE` (as the editor runs it): rank 0's events reach the stream, and rank 1's crash
    is its one terminal event (the command line's own error report adds no second one)."""
    exe = shutil.which("torchbolt") or str(ROOT / ".venv" / "bin" / "torchbolt")
    events = tmp_path / "events.jsonl"
    proc = subprocess.run(
        [exe, "fit", f"{SCRIPTS / 'fit_script.py'}::Model", "--model.crash_rank", "1", "--trainer.devices", "2",
         "--trainer.strategy", strategy, "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
         "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path), "--events",
         str(events)], cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode != 0 and "boom on purpose on rank 1" in proc.stderr
    written = _events(events)
    kinds = [e["type"] for e in written]
    assert kinds[0] == "run_started" and kinds.count("run_started") == 1 and written[0]["strategy"] == strategy
    assert "epoch_started" in kinds and kinds[-1] == "failed" and kinds.count("failed") == 1
    assert "finished" not in kinds
    failed = written[-1]
    assert failed["rank"] == 1 and failed["error_type"] == "ValueError" and failed["phase"] == "run"
    assert failed["frames"][-1]["file"] == str(SCRIPTS / "fit_script.py")


def test_a_module_that_cannot_be_pickled_gets_a_clear_error(tmp_path: Path) -> None:
    code, err = finish(_start(tmp_path, "--strategy", "ddp_spawn", "--unpicklable"))
    assert code != 0
    assert "the LightningModule (at `lock`) cannot be pickled" in err and "_thread.lock" in err
    assert "Use strategy='ddp'" in err
    assert not list(tmp_path.glob("pid*"))  # nothing was started


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_launching_process_leaves_no_process_behind(tmp_path: Path, signum: int) -> None:
    """SIGINT to the whole process group (Ctrl-C in a terminal) or SIGTERM to the launching process only."""
    proc = _start(tmp_path, "--strategy", "ddp_fork", "--epochs", "1000", "--sleep", session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(list(tmp_path.glob("pid*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # inside the training loop
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        code, err = finish(proc, timeout=60)
        assert code not in (0, -9), f"the job did not stop:\n{err[-3000:]}"
        assert_no_process_left(tmp_path)
        assert not (tmp_path / "parent.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_fork_is_refused_once_cuda_is_initialized(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchbolt.strategies.launchers import SpawnLauncher

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match=r"CUDA is already initialized.*'ddp_spawn' or 'ddp'"):
        SpawnLauncher(2, "fork").check_can_start()
    SpawnLauncher(2, "spawn").check_can_start()  # spawn starts fresh interpreters: CUDA is fine there


def test_spawn_from_a_script_without_a_main_guard_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.multiprocessing as mp
    from torchbolt.strategies.launchers import SpawnLauncher

    monkeypatch.setattr(mp.current_process(), "_inheriting", True, raising=False)  # as while a child imports __main__
    with pytest.raises(RuntimeError, match='if __name__ == "__main__"'):
        SpawnLauncher(2, "spawn").check_can_start()


def test_find_unpicklable_names_the_innermost_attribute() -> None:
    import threading

    from torchbolt.strategies.launchers import find_unpicklable

    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    net[0].hook_state = {"ok": 1, "bad": threading.Lock()}  # type: ignore[assignment]
    found = find_unpicklable(net)
    assert found is not None and found[0] == ".0.hook_state['bad']" and "_thread.lock" in found[1]
    assert find_unpicklable(torch.nn.Linear(2, 2)) is None


@pytest.mark.lightning
def test_differential_against_lightning_ddp_spawn(tmp_path: Path) -> None:
    """The same script on both engines with ddp_spawn on 2 CPU processes: the launching process ends with the same
    weights, callback_metrics and best checkpoint. (shuffle=True: Lightning always shuffles the training sampler
    under DDP.) Lightning sends back neither logged_metrics nor best_model_score nor the progress counters."""
    pytest.importorskip("lightning.pytorch")
    procs = {engine: _start(tmp_path / engine, "--strategy", "ddp_spawn", "--shuffle", f"--engine={engine}")
             for engine in ("lightning", "torchbolt")}
    for engine, proc in procs.items():
        code, err = finish(proc)
        assert code == 0, f"{engine} failed:\n{err[-4000:]}"
    lightning, torchbolt = (json.loads((tmp_path / e / "parent.json").read_text())["fit"]
                            for e in ("lightning", "torchbolt"))
    assert torchbolt["callback_metrics"] == pytest.approx(lightning["callback_metrics"], abs=1e-6)
    assert Path(torchbolt["best_model_path"]).name == Path(lightning["best_model_path"]).name
    assert torchbolt["state"] == lightning["state"]
    assert _diff(tmp_path / "lightning" / "weights.pt", tmp_path / "torchbolt" / "weights.pt") < 1e-6


def test_run_requests_pickle_and_stay_read_only() -> None:
    """ddp_spawn pickles the call's request into every process."""
    import pickle

    from torchbolt.trainer.requests import FitRequest

    request = FitRequest.make(None, [1, 2], None, "last", True)
    copy = pickle.loads(pickle.dumps(request))
    assert copy == request and type(copy) is FitRequest and copy.loader_source("train_dataloader") == [1, 2]
    with pytest.raises(TypeError):
        copy.dataloaders["val_dataloader"] = "x"  # type: ignore[index]
