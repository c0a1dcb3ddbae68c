"""Fault behaviour of the launcher at strategy level.

Usage: python core_fault.py {raise|sleep} PIDFILE
raise: rank 1 raises at step 3 while rank 0 keeps all-reducing gradients.
sleep: every rank trains forever (the test sends SIGTERM to the launcher).
Each rank appends its pid to PIDFILE once the process group is up.
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn
from torchbolt.strategies import DDPStrategy
from torchbolt.strategies.launchers import SubprocessLauncher


def run(mode: str, pidfile: str) -> None:
    strategy = DDPStrategy(parallel_devices=[torch.device("cpu")] * 2)
    strategy.set_ranks(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), 0, int(os.environ["WORLD_SIZE"]))
    strategy.setup_environment()
    model = nn.Linear(4, 1)
    wrapped = strategy.setup_module(model)
    with open(pidfile, "a") as f:
        f.write(f"{os.getpid()}\n")
    strategy.barrier()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    step = 0
    while True:
        step += 1
        if mode == "raise" and strategy.global_rank == 1 and step == 3:
            raise ValueError("boom on purpose at step 3")
        loss = wrapped("forward", torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if mode == "raise" and step > 10_000:
            return


if __name__ == "__main__":
    launcher = SubprocessLauncher(2)
    launcher.launch(run, sys.argv[1], sys.argv[2])
