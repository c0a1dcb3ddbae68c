"""CPUSyncBatchNorm's forward and backward on 2 gloo processes, against one batch norm on the whole batch.

    python syncbn_unit.py OUT.pt

Both ranks hold a share of one fixed batch (unequal sizes: 3 and 5 samples), run a CPUSyncBatchNorm2d layer in
training mode twice (so the running statistics move twice) and backpropagate sum(y * g) for a fixed g. Each
rank saves its output, input gradient, weight/bias gradients and running statistics to OUT.pt.rank{R}; the
launching process first checks that a one-process group gives plain batch norm's results (OUT.pt.world1).
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torchbolt.plugins.layer_sync import convert_to_sync_batchnorm

SIZES = (3, 5)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(sum(SIZES), 4, 3, 3, generator=g) * 2.0 + 5.0  # a mean far from 0 tests the precision
    return x, torch.randn(sum(SIZES), 4, 3, 3, generator=g)


def layer() -> nn.Module:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4, momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return convert_to_sync_batchnorm(bn)


def step(bn: nn.Module, x: torch.Tensor, g: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    bn(x)  # a first step: the running statistics move twice
    y = bn(x)
    (y * g).sum().backward()
    return {"y": y.detach(), "x_grad": x.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
            "running_mean": bn.running_mean.clone(), "running_var": bn.running_var.clone(),
            "num_batches_tracked": bn.num_batches_tracked.clone()}


def rank_main(rank: int, out: str, port: int) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    x, g = data()
    lo = sum(SIZES[:rank])
    share = slice(lo, lo + SIZES[rank])
    torch.save(step(layer(), x[share], g[share]), f"{out}.rank{rank}")
    dist.destroy_process_group()


def main() -> None:
    from torchbolt.plugins.environments import find_free_port

    out = sys.argv[1]
    # One process in a group of one: plain batch norm (nn.SyncBatchNorm itself refuses CPU tensors here).
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{find_free_port()}", rank=0, world_size=1)
    x, g = data()
    torch.save(step(layer(), x, g), f"{out}.world1")
    dist.destroy_process_group()
    mp.start_processes(rank_main, args=(out, find_free_port()), nprocs=2, start_method="fork")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
