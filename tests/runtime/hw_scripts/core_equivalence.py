"""Strategy-level equivalence: N ranks with per-rank batch b vs one process with batch N*b.

Usage: python core_equivalence.py {ddp|fsdp|fsdp_sharded|single} NPROC OUT.pt
With ddp/fsdp the script launches its own ranks through the strategy's launcher (strategy='ddp' style).
It writes the final weights to OUT.pt, a checkpoint to OUT.ckpt (a folder for fsdp_sharded) and, after
wiping the weights and loading that checkpoint back through the strategy, the weights again to OUT.reloaded.pt.
"""

from __future__ import annotations

import os
import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.plugins.environments import detect_environment
from torchbolt.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy


def build() -> tuple[nn.Module, TensorDataset]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=g)
    y = torch.randn(64, 1, generator=g)
    return model, TensorDataset(x, y)


def run(kind: str, nproc: int, out: str) -> None:
    model, data = build()
    if kind == "single":
        strategy = SingleDeviceStrategy("cpu")
        batch = 4 * nproc
    else:
        devices = [torch.device("cpu")] * nproc
        if kind == "ddp":
            strategy = DDPStrategy(parallel_devices=devices)
        else:
            strategy = FSDPStrategy(parallel_devices=devices, auto_wrap_policy={nn.Linear},
                                    state_dict_type="sharded" if kind == "fsdp_sharded" else "full")
        env = detect_environment()
        strategy.set_ranks(env.global_rank(), env.local_rank(), env.node_rank(), int(os.environ["WORLD_SIZE"]))
        batch = 4
    strategy.setup_environment()
    wrapped = strategy.setup_module(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = strategy.process_dataloader(DataLoader(data, batch_size=batch, shuffle=False))
    for _ in range(2):
        for x, y in loader:
            x, y = strategy.batch_to_device((x, y))
            # DDP synchronizes what runs inside its forward: call the model through the wrapper.
            out_ = wrapped("forward", x) if kind == "ddp" else model(x)
            loss = nn.functional.mse_loss(out_, y)
            opt.zero_grad()
            strategy.backward(loss).backward()
            strategy.optimizer_step(opt, lambda: None)
    save_weights(strategy, model, out)
    checkpoint = {"state_dict": strategy.lightning_module_state_dict(),
                  "optimizer_states": [strategy.optimizer_state(opt)], "epoch": 2}
    strategy.optimizers = [opt]
    strategy.save_checkpoint(checkpoint, out + ".ckpt")
    strategy.barrier()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    loaded = strategy.load_checkpoint(out + ".ckpt")
    assert loaded["epoch"] == 2
    strategy.load_model_state_dict(loaded["state_dict"])
    strategy.load_optimizer_state_dict(opt, loaded["optimizer_states"][0])
    save_weights(strategy, model, out + ".reloaded.pt")


def save_weights(strategy: object, model: nn.Module, path: str) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    if isinstance(strategy, FSDPStrategy):
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    else:
        state = model.state_dict()
    if strategy.is_global_zero:  # type: ignore[attr-defined]
        torch.save({k: v.detach().cpu() for k, v in state.items()}, path)
    strategy.barrier()  # type: ignore[attr-defined]


if __name__ == "__main__":
    kind, nproc, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind != "single" and "LOCAL_RANK" not in os.environ:
        from torchbolt.strategies.launchers import SubprocessLauncher

        launcher = SubprocessLauncher(nproc)
        launcher.launch(run, kind, nproc, out)
        launcher.wait_children()
    else:
        run(kind, nproc, out)
