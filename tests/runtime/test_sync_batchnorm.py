"""sync_batchnorm on CPU processes (gloo): CPUSyncBatchNorm's autograd function, and the Trainer under 'ddp'.

Multi-process work runs in scripts (tests/runtime/hw_scripts) in fresh process trees with a hard timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from _hw_helpers import SCRIPTS, finish, run_script, script_env
from torch import nn
from torchbolt.plugins.layer_sync import CPUSyncBatchNorm, convert_to_sync_batchnorm

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")
TIMEOUT_S = 120
sys.path.insert(0, str(SCRIPTS))
import syncbn_unit  # noqa: E402 - the script's data and steps are the reference's too


def _plain_reference() -> dict[str, torch.Tensor]:
    """One BatchNorm2d on the whole batch, same start, same steps."""
    synced = syncbn_unit.layer()
    plain = nn.BatchNorm2d(4, momentum=0.3)
    plain.load_state_dict(synced.state_dict())
    x, g = syncbn_unit.data()
    return syncbn_unit.step(plain, x, g)


def test_the_autograd_function_matches_one_batch_norm_on_the_concatenated_batch(tmp_path: Path) -> None:
    out = tmp_path / "bn.pt"
    proc = run_script("syncbn_unit.py", str(out), cwd=tmp_path, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ref = _plain_reference()
    r0, r1 = (torch.load(f"{out}.rank{r}") for r in range(2))
    assert r0["y"].shape[0] == 3 and r1["y"].shape[0] == 5  # unequal shares of the batch
    torch.testing.assert_close(torch.cat([r0["y"], r1["y"]]), ref["y"], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([r0["x_grad"], r1["x_grad"]]), ref["x_grad"], atol=1e-5, rtol=0)
    # weight and bias gradients stay local (DDP reduces them): their sum is the whole batch's
    torch.testing.assert_close(r0["w_grad"] + r1["w_grad"], ref["w_grad"], atol=1e-5, rtol=0)
    torch.testing.assert_close(r0["b_grad"] + r1["b_grad"], ref["b_grad"], atol=1e-5, rtol=0)
    for rank in (r0, r1):  # every rank keeps the global running statistics (unbiased variance)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(rank[key], ref[key], atol=1e-5, rtol=0)
    # the statistics really are global: one rank's share alone gives other running statistics
    alone = nn.BatchNorm2d(4, momentum=0.3)
    alone.load_state_dict(syncbn_unit.layer().state_dict())
    x, g = syncbn_unit.data()
    assert (syncbn_unit.step(alone, x[:3], g[:3])["running_mean"] - ref["running_mean"]).abs().max() > 1e-2
    # a group of one process is plain batch norm (torch's own SyncBatchNorm raises on CPU there)
    world1 = torch.load(f"{out}.world1")
    for key, value in ref.items():
        torch.testing.assert_close(world1[key], value, atol=0, rtol=0)


def test_without_a_process_group_and_in_eval_it_is_plain_batch_norm() -> None:
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6, momentum=None))
    synced = convert_to_sync_batchnorm(nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6, momentum=None)))
    synced.load_state_dict(plain.state_dict())
    assert isinstance(synced[1], CPUSyncBatchNorm)
    x = torch.randn(10, 3)
    for mode in ("train", "eval"):
        getattr(plain, mode)()
        getattr(synced, mode)()
        torch.testing.assert_close(synced(x), plain(x), atol=0, rtol=0)
    for key, value in plain.state_dict().items():  # same keys: a checkpoint loads into the plain model
        torch.testing.assert_close(synced.state_dict()[key], value, atol=0, rtol=0)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        synced[1](torch.randn(6))


def _start(out: Path, *args: str) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, str(SCRIPTS / "fit_script.py"), str(out), "--batchnorm", *args],
                            cwd=out, env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("syncbn")
    procs = {
        "single": _start(root / "single", "--devices", "1", "--batch", "8"),
        "synced": _start(root / "synced", "--devices", "2", "--strategy", "ddp", "--sync-batchnorm"),
        "unsynced": _start(root / "unsynced", "--devices", "2", "--strategy", "ddp"),
        # ranks started by the Trainer: the launching process's module gets the trained weights and statistics
        "spawned": subprocess.Popen([sys.executable, str(SCRIPTS / "spawn_script.py"), str(root / "spawned"),
                                     "--strategy", "ddp_spawn", "--fit-only", "--sync-batchnorm"], cwd=root,
                                    env=script_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    results: dict[str, Any] = {name: finish(proc, timeout=TIMEOUT_S) for name, proc in procs.items()}
    for name, (code, err) in results.items():
        assert code == 0, f"{name} failed:\n{err[-4000:]}"
    results.update({name: torch.load(root / name / "weights.pt") for name in procs})
    results["root"] = root
    return results


def _diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys: list[str]) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in keys)


@pytest.mark.parametrize("name", ["synced", "spawned"])
def test_ddp_with_sync_batchnorm_equals_one_process_with_the_whole_batch(runs: dict[str, Any], name: str) -> None:
    single, synced = runs["single"], runs[name]
    assert list(synced) == list(single)  # the same state-dict keys as the plain BatchNorm1d model
    stats = ["net.1.running_mean", "net.1.running_var"]
    assert _diff(single, synced, list(single)) < 1e-5
    assert _diff(single, synced, stats) < 1e-5 and int(synced["net.1.num_batches_tracked"]) == 8


def test_without_sync_batchnorm_the_statistics_differ(runs: dict[str, Any]) -> None:
    single, unsynced = runs["single"], runs["unsynced"]
    assert _diff(single, unsynced, ["net.1.running_mean", "net.1.running_var"]) > 1e-3


def test_after_fit_the_module_is_plain_again(runs: dict[str, Any]) -> None:
    """As Lightning's DDP teardown: the user's module gets its plain batch-norm layers back after fit and its
    step methods no longer go through DistributedDataParallel (on every rank)."""
    for rank in range(2):
        result = json.loads((runs["root"] / "synced" / f"rank{rank}.json").read_text())
        assert result["redirected_after_fit"] == []
        assert "CPUSyncBatchNorm" not in result["layer_classes"] and "_BatchNormXd" in result["layer_classes"]
