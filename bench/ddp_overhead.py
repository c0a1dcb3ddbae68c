"""DDP overhead on CPU: torchbolt vs a hand-written DistributedDataParallel loop (Lightning printed too).

Two gloo processes, the bench/overhead.py model (MLP 32→64→10, per-rank batch 32), SGD, one thread per
process, `self.log(..., sync_dist=False)` of the loss every step. Every variant is started the same way
(this script starts 2 processes with RANK/LOCAL_RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set, as torchrun
would, so neither framework launches anything) and rank 0 reports the time of its training epoch
(from the first batch to the end of the epoch, excluding process start and Trainer construction).
Rounds are interleaved after a dropped warm-up round; the table shows medians.

    python bench/ddp_overhead.py [--runs 5] [--steps 400] [--no-lightning]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH = 32


def worker(variant: str, steps: int, result: str) -> None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    sys.path.insert(0, str(HERE))
    from overhead import make_net

    torch.set_num_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(steps * BATCH * world, 32, generator=g)
    y = torch.randint(0, 10, (steps * BATCH * world,), generator=g)
    data = TensorDataset(x, y)
    elapsed = cpu = 0.0
    if variant == "hand-written DDP":
        dist.init_process_group("gloo", rank=rank, world_size=world)
        net = torch.nn.parallel.DistributedDataParallel(make_net())
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        loader = DataLoader(data, batch_size=BATCH, sampler=DistributedSampler(data, shuffle=False))
        start, cpu_start = time.perf_counter(), time.process_time()
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        dist.barrier()
        # The DDP wrapper (its reducer holds the process group) goes first, while Python is fully alive: left to
        # interpreter exit, gloo's threads can abort the process ("terminate called without an active
        # exception", seen once here on both ranks).
        del net, opt
        dist.destroy_process_group()
    else:
        if variant.startswith("torchbolt"):
            import torchbolt as pl
        else:
            import logging

            import lightning.pytorch as pl

            for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
                logging.getLogger(name).setLevel(logging.ERROR)

        class Bench(pl.LightningModule):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.net = make_net()
                self.t0 = self.c0 = 0.0
                self.elapsed = self.cpu_s = 0.0

            def on_train_epoch_start(self) -> None:
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def on_train_epoch_end(self) -> None:
                self.elapsed, self.cpu_s = time.perf_counter() - self.t0, time.process_time() - self.c0

            def training_step(self, batch: Any, batch_idx: int) -> Any:
                xb, yb = batch
                loss = F.cross_entropy(self.net(xb), yb)
                self.log("loss", loss)
                return loss

            def configure_optimizers(self) -> Any:
                return torch.optim.SGD(self.parameters(), lr=0.01)

            def train_dataloader(self) -> Any:
                return DataLoader(data, batch_size=BATCH, shuffle=False)

        import warnings

        warnings.simplefilter("ignore")
        model = Bench()
        with tempfile.TemporaryDirectory() as root:
            trainer = pl.Trainer(accelerator="cpu", devices=world, strategy="ddp", max_epochs=1, logger=False,
                                 enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                                 default_root_dir=root)
            trainer.fit(model)
        elapsed, cpu = model.elapsed, model.cpu_s
    if rank == 0:
        Path(result).write_text(json.dumps({"elapsed": elapsed, "cpu": cpu}))


def run_variant(variant: str, steps: int, world: int = 2) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp, "r.json")
        from torchbolt.plugins.environments import find_free_port

        port = str(find_free_port())
        env_base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(world),
                    "LOCAL_WORLD_SIZE": str(world), "NODE_RANK": "0", "OMP_NUM_THREADS": "1",
                    "PYTHONPATH": os.pathsep.join([str(HERE.parent / "runtime"), os.environ.get("PYTHONPATH", "")])}
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", variant, "--steps", str(steps),
                                   "--result", str(result)],
                                  env={**env_base, "RANK": str(r), "LOCAL_RANK": str(r)})
                 for r in range(world)]
        codes = [p.wait(timeout=600) for p in procs]
        if any(codes):
            raise SystemExit(f"{variant}: a rank failed with exit codes {codes}")
        found = json.loads(result.read_text())
        return float(found["elapsed"]), float(found["cpu"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--no-lightning", action="store_true")
    parser.add_argument("--worker", default="")
    parser.add_argument("--result", default="")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.result)
        return
    variants = ["hand-written DDP", "torchbolt ddp"]
    if not args.no_lightning:
        try:
            import lightning.pytorch  # noqa: F401
        except ImportError:
            print("lightning is not installed: skipping its row", file=sys.stderr)
        else:
            variants.append("lightning ddp")
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for round_ in range(args.runs + 1):
        for v in variants:
            t = run_variant(v, args.steps)
            if round_:  # round 0 warms the page cache and .pyc files
                times[v].append(t)
        if round_:
            print(f"  round {round_}/{args.runs}: " + ", ".join(f"{v} {times[v][-1][0]:.3f}s" for v in variants),
                  file=sys.stderr)
    wall = {v: statistics.median(w for w, _ in times[v]) for v in variants}
    cpu = {v: statistics.median(c for _, c in times[v]) for v in variants}
    base = "hand-written DDP"
    print(f"2 gloo processes, {args.steps} steps/rank, batch {BATCH}/rank, median of {args.runs} rounds; rank 0's "
          "epoch (wall) and its CPU time (less disturbed by other work on a shared machine)")
    print("| variant | wall (s) | ms/step | vs hand-written (wall) | CPU (s) | vs hand-written (CPU) |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        print(f"| {v} | {wall[v]:.3f} | {wall[v] / args.steps * 1e3:.3f} | {wall[v] / wall[base]:.2f}x | "
              f"{cpu[v]:.3f} | {cpu[v] / cpu[base]:.2f}x |")


if __name__ == "__main__":
    main()
