"""A torchbolt training script the distributed Trainer tests run as a user would.

    python fit_script.py OUT_DIR [--devices N] [--strategy S] [--batch B] [--epochs E] [--num-nodes K]
                         [--crash-rank R] [--ckpt PATH] [--save-every-epoch] [--precision P] [--sleep]
                         [--leave-rank R] [--batchnorm] [--sync-batchnorm] [--unused-parameter]

Every rank writes OUT_DIR/rank{R}.json (ranks, the sample indices it trained on, callback_metrics, the values
of a sync_dist-logged metric, all_gather/broadcast/reduce results) and rank 0 OUT_DIR/weights.pt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

if "--engine=lightning" in sys.argv:  # the differential test runs this same script on Lightning
    import lightning.pytorch as tb
    from lightning.pytorch.callbacks import Callback, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger
else:
    import torchbolt as tb
    from torchbolt.callbacks import Callback, ModelCheckpoint
    from torchbolt.loggers import CSVLogger

#: Callback hooks recorded (in order) for the rank-0 hook trace.
TRACED = ("setup", "on_fit_start", "on_train_start", "on_train_epoch_start", "on_train_batch_start",
          "on_before_backward", "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad",
          "on_train_batch_end", "on_train_epoch_end", "on_save_checkpoint", "on_train_end", "on_fit_end", "teardown")


def _tracer() -> Any:
    def make(name: str) -> Any:
        def hook(self: Any, *args: Any, **kwargs: Any) -> None:
            self.trace.append(name)
        return hook

    cls = type("Tracer", (Callback,), {name: make(name) for name in TRACED})
    tracer = cls()
    tracer.trace = []
    return tracer


class Indexed(Dataset[tuple[torch.Tensor, torch.Tensor, int]]):
    def __init__(self, n: int = 32) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(n, 8, generator=g)
        self.y = torch.randn(n, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.x[i], self.y[i], i


class Model(tb.LightningModule):
    def __init__(self, batch: int = 4, crash_rank: int = -1, sleep: bool = False, shuffle: bool = False,
                 batchnorm: bool = False, unused: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        if batchnorm:
            self.net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1))
        else:
            self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
        self.batch, self.crash_rank, self.sleep, self.shuffle = batch, crash_rank, sleep, shuffle
        if unused:
            self.unused = nn.Linear(8, 1)  # takes no part in the loss: DDP fails on the second step
        self.seen: list[int] = []
        self.synced: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, idx = batch
        self.seen += [int(i) for i in idx]
        if self.global_rank == self.crash_rank and self.global_step == 3:
            raise ValueError(f"boom on purpose on rank {self.global_rank}")
        if self.sleep:
            time.sleep(0.05)
        loss = nn.functional.mse_loss(self.net(x), y)
        # A per-rank value: sync_dist must make every rank see the same mean.
        self.log("rank_value", torch.tensor(float(self.global_rank)), sync_dist=True, on_step=True, on_epoch=False)
        self.log("train_loss", loss, sync_dist=True, on_step=False, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.synced.append(float(self.trainer.callback_metrics["rank_value"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(Indexed(), batch_size=self.batch, shuffle=self.shuffle)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--devices", default="1")
    p.add_argument("--strategy", default="auto")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--crash-rank", type=int, default=-1)
    p.add_argument("--ckpt", default=None)
    p.add_argument("--precision", default=None)
    p.add_argument("--save-every-epoch", action="store_true")
    p.add_argument("--sleep", action="store_true")
    p.add_argument("--logger", action="store_true")
    p.add_argument("--engine", default="torchbolt")
    p.add_argument("--shuffle", action="store_true")
    p.add_argument("--batchnorm", action="store_true")  # a BatchNorm1d layer in the model
    p.add_argument("--sync-batchnorm", action="store_true")
    p.add_argument("--unused-parameter", action="store_true")  # a layer outside the loss (DDP's error)
    p.add_argument("--leave-rank", type=int, default=-1)  # this rank ends (status 0) without calling fit
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    devices: Any = int(a.devices) if a.devices.isdigit() else a.devices
    model = Model(a.batch, a.crash_rank, a.sleep, a.shuffle, a.batchnorm, a.unused_parameter)
    tracer = _tracer()
    callbacks = [tracer]
    if a.save_every_epoch:
        callbacks.append(ModelCheckpoint(dirpath=out / "ckpts", save_top_k=-1, every_n_epochs=1))
    trainer = tb.Trainer(accelerator="cpu", devices=devices, strategy=a.strategy, num_nodes=a.num_nodes,
                         max_epochs=a.epochs, logger=CSVLogger(out / "logs") if a.logger else False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=a.save_every_epoch, callbacks=callbacks, precision=a.precision,
                         default_root_dir=out, sync_batchnorm=a.sync_batchnorm)
    with open(out / f"pid{os.getpid()}", "w"):
        pass
    writes: list[str] = []  # what this rank's checkpoint IO wrote (only rank 0 may write)
    io = trainer.strategy.checkpoint_io
    original_save = io.save_checkpoint

    def recording_save(checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        writes.append(os.fspath(path))
        original_save(checkpoint, path, storage_options)

    io.save_checkpoint = recording_save  # type: ignore[method-assign]
    if os.environ.get("RANK") == str(a.leave_rank):
        return
    trainer.fit(model, ckpt_path=a.ckpt)
    rank = trainer.global_rank
    gathered = model.all_gather(torch.tensor([float(rank)]))
    result = {
        "global_rank": rank, "local_rank": trainer.local_rank, "node_rank": trainer.node_rank,
        "world_size": trainer.world_size, "num_nodes": trainer.num_nodes, "num_devices": trainer.num_devices,
        "is_global_zero": trainer.is_global_zero, "strategy": type(trainer.strategy).__name__,
        "precision": trainer.precision, "seen": model.seen, "synced": model.synced,
        "callback_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "all_gather": gathered.flatten().tolist(),
        "broadcast": trainer.strategy.broadcast(f"from-{rank}"),
        "reduce_sum": float(trainer.strategy.reduce(torch.tensor(float(rank + 1)), reduce_op="sum")),
        "global_step": trainer.global_step, "writes": writes, "trace": tracer.trace,
        # after fit the module is the user's again: no step redirected through a wrapper, plain layers
        "redirected_after_fit": sorted(k for k in vars(model) if k.endswith("_step")),
        "layer_classes": sorted({type(m).__name__ for m in model.modules()}),
        "env": {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK")},
    }
    state = trainer.strategy.lightning_module_state_dict()  # full weights (a collective under FSDP)
    if trainer.is_global_zero:
        torch.save({k: v.detach().cpu() for k, v in state.items()}, out / "weights.pt")
    trainer.strategy.barrier()
    (out / f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
