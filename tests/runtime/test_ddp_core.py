"""Strategies without a Trainer: sharded FSDP checkpoints on 2 gloo processes, and sampler splitting.

A distributed test starts a script in a fresh process tree with a hard timeout, so a hang fails the test.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
import torch
from _hw_helpers import run_script
from torch.utils.data import DataLoader, RandomSampler, Sampler, TensorDataset, WeightedRandomSampler
from torchbolt.strategies.fsdp import load_sharded_checkpoint_full
from torchbolt.strategies.parallel import DistributedSamplerWrapper, distribute_dataloader

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    folder = tmp_path_factory.mktemp("single")
    proc = run_script("core_equivalence.py", "single", "2", str(folder / "w.pt"), cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return torch.load(folder / "w.pt")


@pytest.mark.parametrize("kind", ["fsdp_sharded"])  # ddp and full-state fsdp: test_ddp_trainer.py
def test_two_ranks_with_batch_b_equal_one_process_with_batch_2b(
    kind: str, single_run: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    out = tmp_path / "w.pt"
    proc = run_script("core_equivalence.py", kind, "2", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _max_diff(torch.load(out), single_run) < 1e-6
    # The checkpoint written through the strategy loads back into the same layout...
    assert _max_diff(torch.load(tmp_path / "w.pt.reloaded.pt"), single_run) < 1e-6
    # ...and into a single process without any process group.
    ckpt = tmp_path / "w.pt.ckpt"
    if kind == "fsdp_sharded":
        assert ckpt.is_dir()
        checkpoint = load_sharded_checkpoint_full(ckpt)
    else:
        checkpoint = torch.load(ckpt)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
        model.load_state_dict(checkpoint["state_dict"])
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        opt.load_state_dict(checkpoint["optimizer_states"][0])  # plain integer-keyed optimizer state
    assert checkpoint["epoch"] == 2
    assert _max_diff(checkpoint["state_dict"], single_run) < 1e-6


# ---- samplers (no processes needed: each rank's share is computed directly) -------------------------------
def _shares(loader: DataLoader, world: int = 2, epoch: int = 0) -> list[list[int]]:
    shares = []
    for rank in range(world):
        dl = distribute_dataloader(loader, world, rank)
        dl.sampler.set_epoch(epoch)  # type: ignore[union-attr]
        shares.append([int(i) for batch in dl for i in batch[0]])
    return shares


_DATA = TensorDataset(torch.arange(10))


def test_sequential_loader_splits_without_overlap_in_order() -> None:
    a, b = _shares(DataLoader(_DATA, batch_size=2))
    assert a == [0, 2, 4, 6, 8] and b == [1, 3, 5, 7, 9]


def test_shuffled_loader_stays_shuffled_disjoint_and_changes_with_the_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    loader = DataLoader(_DATA, batch_size=2, shuffle=True)
    a, b = _shares(loader)
    assert sorted(a + b) == list(range(10)) and not set(a) & set(b)
    assert a != sorted(a) or b != sorted(b)
    assert _shares(loader, epoch=1) != [a, b]
    assert _shares(loader) == [a, b]  # same seed and epoch, same order on every rank


def test_drop_last_is_kept() -> None:
    a, b = _shares(DataLoader(TensorDataset(torch.arange(9)), batch_size=2, drop_last=True))
    assert len(a) == len(b) == 4 and not set(a) & set(b)
    dl = distribute_dataloader(DataLoader(_DATA, batch_size=3, drop_last=True), 2, 0)
    assert dl.drop_last and dl.sampler.drop_last  # type: ignore[union-attr]


def test_user_sampler_intent_is_kept() -> None:
    class Backwards(Sampler[int]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(range(9, -1, -1))

        def __len__(self) -> int:
            return 10

    a, b = _shares(DataLoader(_DATA, batch_size=5, sampler=Backwards()))
    assert a == [9, 7, 5, 3, 1] and b == [8, 6, 4, 2, 0]
    weighted = DataLoader(_DATA, batch_size=2, sampler=WeightedRandomSampler([0.0] * 5 + [1.0] * 5, 10))
    dl = distribute_dataloader(weighted, 2, 1)
    assert isinstance(dl.sampler, DistributedSamplerWrapper)
    assert all(int(i) >= 5 for batch in dl for i in batch[0])  # zero-weight samples never drawn


def test_loaders_left_alone() -> None:
    loader = DataLoader(_DATA, batch_size=2, sampler=RandomSampler(_DATA, replacement=True))
    assert isinstance(distribute_dataloader(loader, 2, 0).sampler, DistributedSamplerWrapper)
    single = DataLoader(_DATA, batch_size=2)
    assert distribute_dataloader(single, 1, 0) is single
    with pytest.warns(UserWarning, match="custom batch_sampler"):
        custom = DataLoader(_DATA, batch_sampler=[[0, 1], [2, 3]])
        assert distribute_dataloader(custom, 2, 0) is custom


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread states from /proc")
def test_exit_waits_for_threads_that_still_run() -> None:
    """At exit, the process group is left only once no other thread of the process is running (a gloo thread
    freeing a finished collective's tensors must not meet interpreter finalization)."""
    from torchbolt.strategies.parallel import _let_threads_settle

    stop = threading.Event()

    def hashing() -> None:  # hashlib releases the GIL on large inputs: this thread really runs
        data = b"x" * (1 << 22)
        while not stop.is_set():
            hashlib.sha256(data).digest()

    worker = threading.Thread(target=hashing, daemon=True)
    worker.start()
    try:
        assert _let_threads_settle(limit_s=0.3) is False
    finally:
        stop.set()
        worker.join()
    assert _let_threads_settle(limit_s=0.3) is True
