"""ParallelStrategy: one process per device joined in a torch.distributed process group.

The process group is created in `setup_environment` from the ranks the plan (or the launcher) gave this
process: gloo on CPU, NCCL on CUDA. Collectives are torch.distributed's own.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from torchbolt.accelerators import Accelerator
from torchbolt.plugins.io import CheckpointIO
from torchbolt.plugins.precision import Precision
from torchbolt.strategies.strategy import Strategy

#: Default time a collective may wait for the other ranks (torch's own default is 30 minutes too).
DEFAULT_TIMEOUT = dt.timedelta(minutes=30)
_REDUCE_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN,
               "product": dist.ReduceOp.PRODUCT}


class ParallelStrategy(Strategy):
    """Base of strategies with one process per device: ranks, process group, collectives, samplers."""

    def __init__(
        self,
        accelerator: Accelerator | None = None,
        parallel_devices: list[torch.device] | None = None,
        cluster_environment: Any = None,
        checkpoint_io: CheckpointIO | None = None,
        precision_plugin: Precision | None = None,
        process_group_backend: str | None = None,
        timeout: dt.timedelta | None = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(accelerator, checkpoint_io, precision_plugin)
        self.parallel_devices = parallel_devices or [torch.device("cpu")]
        self.cluster_environment = cluster_environment
        self.num_nodes = 1
        self.process_group_backend = process_group_backend
        self.timeout = timeout
        self._global_rank = 0
        self._local_rank = 0
        self._node_rank = 0
        self._world_size = 1
        self._aborted = False

    # ---- ranks ----------------------------------------------------------------------------------------
    def set_ranks(self, global_rank: int, local_rank: int, node_rank: int, world_size: int) -> None:
        """Record this process's place (from the hardware plan)."""
        self._global_rank, self._local_rank = global_rank, local_rank
        self._node_rank, self._world_size = node_rank, world_size

    @property
    def global_rank(self) -> int:
        return self._global_rank

    @property
    def local_rank(self) -> int:
        return self._local_rank

    @property
    def node_rank(self) -> int:
        return self._node_rank

    @property
    def world_size(self) -> int:
        return self._world_size

    @property
    def num_processes(self) -> int:
        return len(self.parallel_devices)

    @property
    def root_device(self) -> torch.device:
        return self.parallel_devices[self.local_rank % len(self.parallel_devices)]

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int] | None:
        return {"num_replicas": self.world_size, "rank": self.global_rank}

    # ---- process group --------------------------------------------------------------------------------
    def _backend(self) -> str:
        if self.process_group_backend:
            return self.process_group_backend
        return "nccl" if self.root_device.type == "cuda" else "gloo"

    def setup_environment(self) -> None:
        super().setup_environment()
        self._aborted = False
        try:  # rank_zero_only/rank_zero_info follow this process's rank from now on
            from torchbolt.utilities.rank_zero import rank_zero_only
        except ImportError:
            pass
        else:
            rank_zero_only.rank = self.global_rank
        if self.world_size > 1 and not dist.is_initialized():
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            if "MASTER_PORT" not in os.environ:
                raise RuntimeError(
                    "MASTER_PORT is not set: the launcher sets it for every rank. When starting ranks by hand, set "
                    "MASTER_ADDR and MASTER_PORT (the same on every process), RANK, LOCAL_RANK, WORLD_SIZE."
                )
            kwargs: dict[str, Any] = {"backend": self._backend(), "rank": self.global_rank,
                                      "world_size": self.world_size}
            if self.timeout is not None:
                kwargs["timeout"] = self.timeout
            if self.root_device.type == "cuda":
                kwargs["device_id"] = self.root_device
            dist.init_process_group(**kwargs)
            atexit.register(_destroy_process_group)
        launcher = getattr(self, "launcher", None)
        if launcher is not None and hasattr(launcher, "joined"):
            launcher.joined.set()  # every rank is in the group: a child that ends from now on is not lost in the rendezvous

    # ---- collectives ----------------------------------------------------------------------------------
    @property
    def _distributed(self) -> bool:
        return (self.world_size > 1 and not self._aborted and dist.is_available() and dist.is_initialized())

    def abort_collectives(self) -> None:
        self._aborted = True

    def reduce(self, tensor: Any, group: Any = None, reduce_op: str | None = "mean") -> Any:
        """All-reduce a tensor over the group (mean by default); other values are returned unchanged."""
        if not isinstance(tensor, Tensor) or not self._distributed:
            return tensor
        op_name = "mean" if reduce_op is None else str(reduce_op).lower()
        op_name = {"avg": "mean", "add": "sum"}.get(op_name, op_name)
        if op_name not in ("mean", *_REDUCE_OPS):
            raise ValueError(f"reduce_op={reduce_op!r} is not supported; use 'mean', 'sum', 'max', 'min' or 'product'.")
        result = tensor.detach().clone()
        if op_name == "mean" and not torch.is_floating_point(result):
            result = result.float()
        # gloo has no AVG: sum, then divide by the group's size.
        dist.all_reduce(result, op=_REDUCE_OPS.get(op_name, dist.ReduceOp.SUM), group=group)
        if op_name == "mean":
            result = result / dist.get_world_size(group)
        return result

    def all_gather(self, tensor: Tensor, group: Any = None, sync_grads: bool = False) -> Tensor:
        """Stack `tensor` from every rank along a new first dimension (same shape on every rank)."""
        if not self._distributed:
            return tensor
        tensor = tensor.contiguous()
        if sync_grads:
            import torch.distributed.nn.functional as dist_fn

            return torch.stack(dist_fn.all_gather(tensor, group=group))
        size = dist.get_world_size(group)
        out = [torch.empty_like(tensor) for _ in range(size)]
        dist.all_gather(out, tensor, group=group)
        return torch.stack(out)

    def barrier(self, name: str | None = None) -> None:
        if self._distributed:
            if self.root_device.type == "cuda":
                dist.barrier(device_ids=[self.root_device.index])
            else:
                dist.barrier()

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        if not self._distributed:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=src)
        return holder[0]

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        if not self._distributed:
            return decision
        flag = torch.tensor(int(decision), device=self.root_device)
        dist.all_reduce(flag, op=dist.ReduceOp.SUM)
        return bool(flag == self.world_size) if all else bool(flag > 0)

    # ---- data -----------------------------------------------------------------------------------------
    def process_dataloader(self, dataloader: Any, shuffle: bool | None = None) -> Any:
        """Give each rank its own share of a map-style DataLoader through a DistributedSampler."""
        return distribute_dataloader(dataloader, self.world_size, self.global_rank)

    def teardown(self) -> None:
        super().teardown()


def _destroy_process_group() -> None:
    """Leave the process group at interpreter exit (registered with atexit), while Python is fully alive.

    A gloo worker thread frees the tensors of a finished collective after it has signalled completion. When
    Python dropped its own references first (a temporary like `reduce(torch.tensor(x))`), that free needs the
    GIL; if it only comes during interpreter finalization, the thread is torn down inside a C++ destructor
    and the process aborts ("terminate called without an active exception", SIGABRT, exit code -6, seen on a
    loaded CI machine). So the GIL is first handed over until no other thread of this process is running,
    before and after the group is destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    _let_threads_settle()
    try:
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - best effort at interpreter exit
        pass
    _let_threads_settle()


def _let_threads_settle(limit_s: float = 0.5) -> bool:
    """Release the GIL in short sleeps until no other thread of this process is runnable (Linux: read from
    /proc/self/task), for at most `limit_s`. True when they settled; elsewhere one short sleep, then False."""
    import time

    main_tid = threading.get_native_id()
    deadline = time.monotonic() + limit_s
    quiet = 0
    while time.monotonic() < deadline:
        time.sleep(0.002)  # a thread waiting for the GIL takes it now
        busy = _running_threads(main_tid)
        if busy is None:
            return False
        quiet = quiet + 1 if not busy else 0
        if quiet >= 2:  # twice in a row: nothing was just about to run
            return True
    return False


def _running_threads(skip: int) -> int | None:
    """How many threads of this process other than `skip` are running or runnable; None without /proc."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    busy = 0
    for tid in tids:
        if int(tid) == skip:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        # the state letter follows the parenthesised name, which may itself contain spaces or parentheses
        state = stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3]
        if state in (b"R", b"D"):
            busy += 1
    return busy


class _SamplerIndices(torch.utils.data.Dataset[int]):
    """The indices a user sampler yields, as a dataset a DistributedSampler can split."""

    def __init__(self, sampler: Sampler[Any]) -> None:
        self.sampler = sampler
        self._indices: list[Any] | None = None

    def refresh(self) -> None:
        self._indices = list(self.sampler)

    def __len__(self) -> int:
        if self._indices is None:
            self.refresh()
        assert self._indices is not None
        return len(self._indices)

    def __getitem__(self, i: int) -> Any:
        if self._indices is None:
            self.refresh()
        assert self._indices is not None
        return self._indices[i]


class DistributedSamplerWrapper(DistributedSampler[Any]):
    """Splits what a user's sampler yields across ranks, keeping its order and weighting intent."""

    def __init__(self, sampler: Sampler[Any], *args: Any, **kwargs: Any) -> None:
        self._source = _SamplerIndices(sampler)
        super().__init__(self._source, *args, shuffle=False, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        self._source.refresh()  # a random user sampler draws anew each epoch
        positions = super().__iter__()
        return (self._source[i] for i in positions)


def distribute_dataloader(loader: Any, num_replicas: int, rank: int) -> Any:
    """A copy of `loader` whose sampler gives rank `rank` of `num_replicas` its disjoint share.

    A RandomSampler becomes DistributedSampler(shuffle=True) seeded from PL_GLOBAL_SEED (the same order
    on every rank), a SequentialSampler DistributedSampler(shuffle=False), and any other sampler is
    wrapped so that its indices are split; drop_last is kept. Iterable datasets are left alone (the
    dataset must shard itself), as are loaders whose sampler is already distributed.
    """
    from torchbolt.trainer.data import _rebuild_with_sampler

    if num_replicas <= 1 or not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return loader
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        warnings.warn(
            f"The DataLoader uses a custom batch_sampler ({type(loader.batch_sampler).__name__}), which torchbolt "
            "cannot split across processes: every rank sees every batch. Build it with a DistributedSampler yourself "
            "or pass use_distributed_sampler=False to silence this.",
            stacklevel=3,
        )
        return loader
    seed = int(os.environ.get("PL_GLOBAL_SEED", "0"))
    common = {"num_replicas": num_replicas, "rank": rank, "drop_last": loader.drop_last}
    new_sampler: Sampler[Any]
    if isinstance(sampler, RandomSampler) and not sampler.replacement and sampler._num_samples is None:
        new_sampler = DistributedSampler(loader.dataset, shuffle=True, seed=seed, **common)  # type: ignore[arg-type]
    elif isinstance(sampler, SequentialSampler):
        new_sampler = DistributedSampler(loader.dataset, shuffle=False, **common)  # type: ignore[arg-type]
    else:
        new_sampler = DistributedSamplerWrapper(sampler, **common)
    return _rebuild_with_sampler(loader, new_sampler)
