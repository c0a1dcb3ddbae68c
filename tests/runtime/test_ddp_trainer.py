"""The Trainer on 2 gloo processes (CPU): strategy='ddp' and 'fsdp' launched the way users launch them.

The independent runs start together in one module fixture (each is a script in a fresh process tree with a
hard timeout), then the tests read what every rank wrote. Nothing here may hang CI.
"""

from __future__ import annotations

import json
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
from torchbolt.plugins.environments import find_free_port

FIT = str(SCRIPTS / "fit_script.py")
SPAWN = str(SCRIPTS / "spawn_script.py")
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")


def _start(out: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, FIT, str(out), *args], cwd=out, env=script_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ranks(out: Path) -> list[dict[str, Any]]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def _tmpdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _diff(a: Path, b: Path) -> float:
    wa, wb = torch.load(a), torch.load(b)
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("ddp")
    # Two waves of concurrent runs (fewer rendezvous ports and CPU-bound processes in flight at once).
    first = {
        "single": _start(root / "single", "--devices", "1", "--batch", "8"),
        "ddp": _start(root / "ddp", "--devices", "2", "--strategy", "ddp", "--save-every-epoch", "--logger",
                      TMPDIR=str(_tmpdir(root / "ddp_tmp"))),
        "fsdp": _start(root / "fsdp", "--devices", "2", "--strategy", "fsdp", "--save-every-epoch"),
    }
    results = {name: finish(proc) for name, proc in first.items()}
    # Resume the ddp run from its epoch-0 checkpoint; meanwhile two "nodes" and torchrun.
    ckpt = root / "ddp" / "ckpts" / "epoch=0-step=4.ckpt"
    port_a, port_b, port_c = (str(find_free_port()) for _ in range(3))  # chosen now: wave 1 used ephemeral ports
    node = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port_a}
    spawn_node = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port_c}
    second = {
        "resume": _start(root / "resume", "--devices", "2", "--strategy", "ddp", "--ckpt", str(ckpt)),
        "node0": _start(root / "nodes", "--num-nodes", "2", "--epochs", "1", **node, NODE_RANK="0"),
        "node1": _start(root / "nodes", "--num-nodes", "2", "--epochs", "1", **node, NODE_RANK="1"),
        # the same two nodes with ddp_spawn: each launching process starts its one local rank
        **{f"spawn_node{n}": subprocess.Popen(
            [sys.executable, SPAWN, str(root / f"spawn_node{n}"), "--strategy", "ddp_spawn", "--devices", "1",
             "--num-nodes", "2", "--epochs", "1", "--fit-only"], cwd=root,
            env=script_env(**spawn_node, NODE_RANK=str(n)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for n in (0, 1)},
        "torchrun": subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", port_b, FIT,
             str(root / "torchrun"), "--epochs", "1", "--devices", "auto"], cwd=root, env=script_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    results.update({name: finish(proc) for name, proc in second.items()})
    results["root"] = root
    return results


def _ok(runs: dict[str, Any], name: str) -> Path:
    code, err = runs[name]
    assert code == 0, f"{name} failed:\n{err[-4000:]}"
    return runs["root"] / {"node0": "nodes", "node1": "nodes"}.get(name, name)


def test_ddp_two_ranks_batch_b_equal_one_process_batch_2b(runs: dict[str, Any]) -> None:
    single, ddp = _ok(runs, "single"), _ok(runs, "ddp")
    assert _diff(single / "weights.pt", ddp / "weights.pt") < 1e-6
    r0, r1 = _ranks(ddp)
    assert (r0["global_rank"], r1["global_rank"]) == (0, 1)
    assert r0["world_size"] == r1["world_size"] == 2 and r0["is_global_zero"] and not r1["is_global_zero"]
    assert r0["strategy"] == "DDPStrategy" and r0["num_devices"] == 2
    assert r0["global_step"] == r1["global_step"] == 8


def test_samplers_split_without_overlap(runs: dict[str, Any]) -> None:
    r0, r1 = _ranks(_ok(runs, "ddp"))
    epoch0 = (r0["seen"][:16], r1["seen"][:16])
    assert not set(epoch0[0]) & set(epoch0[1])
    assert sorted(epoch0[0] + epoch0[1]) == list(range(32))


def test_sync_dist_and_collectives_agree_on_every_rank(runs: dict[str, Any]) -> None:
    r0, r1 = _ranks(_ok(runs, "ddp"))
    assert r0["synced"] == r1["synced"] and set(r0["synced"]) == {0.5}  # mean of ranks 0 and 1
    assert r0["callback_metrics"] == r1["callback_metrics"]
    assert r0["all_gather"] == r1["all_gather"] == [0.0, 1.0]
    assert r0["broadcast"] == r1["broadcast"] == "from-0"
    assert r0["reduce_sum"] == r1["reduce_sum"] == 3.0


def test_only_rank_zero_writes(runs: dict[str, Any]) -> None:
    out = _ok(runs, "ddp")
    r0, r1 = _ranks(out)
    assert r1["writes"] == [] and len(r0["writes"]) == 2
    assert sorted(p.name for p in (out / "ckpts").iterdir()) == ["epoch=0-step=4.ckpt", "epoch=1-step=8.ckpt"]
    versions = list((out / "logs" / "lightning_logs").iterdir())
    assert [v.name for v in versions] == ["version_0"]  # one logger directory: rank 1 created none


def test_the_launcher_leaves_no_temporary_folder(runs: dict[str, Any]) -> None:
    _ok(runs, "ddp")
    # the ranks' error folder is gone with the run (torch may keep its own caches there)
    assert list((runs["root"] / "ddp_tmp").glob("torchbolt-*")) == []


def test_resume_under_ddp_equals_the_uninterrupted_run(runs: dict[str, Any]) -> None:
    ddp, resume = _ok(runs, "ddp"), _ok(runs, "resume")
    assert _diff(ddp / "weights.pt", resume / "weights.pt") < 1e-6
    r0, _ = _ranks(resume)
    assert r0["global_step"] == 8 and r0["seen"] == _ranks(ddp)[0]["seen"][16:]  # only epoch 1 was trained


def test_fsdp_matches_and_its_checkpoint_loads_into_one_process(runs: dict[str, Any]) -> None:
    single, fsdp = _ok(runs, "single"), _ok(runs, "fsdp")
    assert _diff(single / "weights.pt", fsdp / "weights.pt") < 1e-6
    assert _ranks(fsdp)[0]["strategy"] == "FSDPStrategy"
    checkpoint = torch.load(fsdp / "ckpts" / "epoch=1-step=8.ckpt")
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    model.load_state_dict({k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items()})
    weights = torch.load(single / "weights.pt")
    assert all(torch.allclose(v, weights[f"net.{k}"], atol=1e-6) for k, v in model.state_dict().items())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer.load_state_dict(checkpoint["optimizer_states"][0])  # a plain optimizer state, not sharded


def test_num_nodes_two_on_localhost(runs: dict[str, Any]) -> None:
    _ok(runs, "node0")
    _ok(runs, "node1")
    r0, r1 = _ranks(runs["root"] / "nodes")
    assert (r0["node_rank"], r1["node_rank"]) == (0, 1)
    assert r0["world_size"] == r1["world_size"] == 2 and r0["num_nodes"] == 2
    assert (r0["local_rank"], r1["local_rank"]) == (0, 0)
    assert r0["synced"] == r1["synced"]


def test_num_nodes_two_on_localhost_with_ddp_spawn(runs: dict[str, Any]) -> None:
    """Two launching processes (NODE_RANK 0 and 1, one local rank each) end with the weights the 'ddp' nodes
    trained; each node's launching process gets its local rank 0's results back, as in Lightning."""
    _ok(runs, "node0")
    for n in (0, 1):
        out = _ok(runs, f"spawn_node{n}")
        assert _diff(runs["root"] / "nodes" / "weights.pt", out / "weights.pt") < 1e-6
        fit = json.loads((out / "parent.json").read_text())["fit"]
        assert (fit["global_step"], fit["current_epoch"], fit["state"]) == (4, 1, ["fit", "finished"])
        assert fit["callback_metrics"]["rank_value"] == 0.5  # sync_dist across the two nodes' ranks
        assert len(list(out.glob("pid*"))) == 1  # one process started on each node
    assert (runs["root"] / "spawn_node0" / "ckpts" / "epoch=0-step=4.ckpt").exists()
    assert not (runs["root"] / "spawn_node1" / "ckpts").exists()  # only global rank 0 writes


def test_torchrun_launches_and_torchbolt_launches_nothing(runs: dict[str, Any]) -> None:
    out = _ok(runs, "torchrun")
    r0, r1 = _ranks(out)
    assert (r0["global_rank"], r1["global_rank"]) == (0, 1) and r0["num_devices"] == 2  # devices='auto' followed it
    assert len(list(out.glob("pid*"))) == 2  # torchrun's two processes, no extra ones


def test_a_rank_that_raises_ends_the_job_with_its_traceback(tmp_path: Path) -> None:
    start = time.monotonic()
    code, err = finish(_start(tmp_path, "--devices", "2", "--crash-rank", "1", "--epochs", "50",
                              TMPDIR=str(_tmpdir(tmp_path / "tmp"))))
    assert code != 0
    assert time.monotonic() - start < 30 + 15  # < 30 s of run time, plus interpreter start-up of 2 processes
    assert "rank 1 failed" in err and "ValueError: boom on purpose on rank 1" in err
    assert 'fit_script.py", line' in err  # the raising rank's traceback, not only rank 0's
    assert_no_process_left(tmp_path)
    assert list((tmp_path / "tmp").glob("torchbolt-*")) == []  # read, then removed


def test_a_rank_that_ends_before_joining_does_not_leave_the_job_waiting(tmp_path: Path) -> None:
    """Rank 1 returns before `fit` (status 0): rank 0 would wait in the rendezvous for good; it ends instead,
    naming the rank and why."""
    code, err = finish(_start(tmp_path, "--devices", "2", "--leave-rank", "1"))
    assert code == 1, err[-3000:]
    assert "rank 1 failed (exit code 0)" in err and "before joining the run's process group" in err
    assert_no_process_left(tmp_path)


def test_ddp_error_about_unused_parameters_says_what_to_do(tmp_path: Path) -> None:
    """As Lightning: DistributedDataParallel's reduction error names the Trainer's options."""
    code, err = finish(_start(tmp_path, "--devices", "2", "--strategy", "ddp", "--unused-parameter"))
    assert code != 0
    assert "Expected to have finished reduction in the prior iteration" in err
    assert "strategy='ddp_find_unused_parameters_true'" in err
    assert "LightningModule (unused.weight, unused.bias)" in err  # named, not only numbered
    assert_no_process_left(tmp_path)


def test_an_error_on_rank_zero_is_shown_as_its_own(tmp_path: Path) -> None:
    """The ranks rank 0 stops after its own error exit non-zero too; that is not "rank 1 failed"."""
    code, err = finish(_start(tmp_path, "--devices", "2", "--crash-rank", "0", "--epochs", "50"))
    assert code != 0
    assert "ValueError: boom on purpose on rank 0" in err
    assert "rank 1 failed" not in err
    assert_no_process_left(tmp_path)


def test_sigterm_to_the_launcher_stops_every_rank(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--devices", "2", "--epochs", "1000", "--sleep")
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(list(tmp_path.glob("pid*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # inside the training loop
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
        assert code != -9, f"the job did not stop after SIGTERM:\n{err[-3000:]}"
        assert_no_process_left(tmp_path)
        for result in tmp_path.glob("rank*.json"):  # a rank that finished fit stopped early, not at max_epochs
            assert json.loads(result.read_text())["global_step"] < 8 * 1000
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.skipif(shutil.which("torchbolt") is None and not (ROOT / ".venv" / "bin" / "torchbolt").exists(),
                    reason="the torchbolt console script is not installed")
def test_cli_fit_with_two_ddp_devices(tmp_path: Path) -> None:
    exe = shutil.which("torchbolt") or str(ROOT / ".venv" / "bin" / "torchbolt")
    target = f"{FIT}::Model"
    proc = subprocess.run(
        [exe, "fit", target, "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_epochs", "1",
         "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.default_root_dir", str(tmp_path)],
        cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert list(tmp_path.glob("**/*.ckpt")), "rank 0 wrote no checkpoint"


@pytest.mark.lightning
def test_differential_against_lightning_ddp(tmp_path: Path) -> None:
    """Same script on both engines, 2 CPU processes: same rank-0 hook trace, data order, callback_metrics and
    final weights. (shuffle=True: Lightning always shuffles the training sampler under DDP, even for a
    DataLoader built with shuffle=False; torchbolt keeps the loader's choice.)"""
    pytest.importorskip("lightning.pytorch")
    procs = {engine: _start(tmp_path / engine, "--devices", "2", "--strategy", "ddp", "--shuffle",
                            f"--engine={engine}") for engine in ("lightning", "torchbolt")}
    for engine, proc in procs.items():
        code, err = finish(proc)
        assert code == 0, f"{engine} failed:\n{err[-4000:]}"
    lightning, torchbolt = (_ranks(tmp_path / e)[0] for e in ("lightning", "torchbolt"))
    assert torchbolt["trace"] == lightning["trace"]
    assert torchbolt["seen"] == lightning["seen"]
    assert torchbolt["callback_metrics"] == pytest.approx(lightning["callback_metrics"], abs=1e-6)
    assert torchbolt["synced"] == lightning["synced"]
    assert _diff(tmp_path / "lightning" / "weights.pt", tmp_path / "torchbolt" / "weights.pt") < 1e-6
