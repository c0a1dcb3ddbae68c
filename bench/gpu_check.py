"""One-GPU check: loss parity and step time of torchbolt vs a hand-written AMP loop vs Lightning.

Models: the bench/overhead.py MLP (32→64→10, batch 32) and one small transformer encoder block
(d_model 256, 4 heads, sequence 64, batch 32). Precisions: 32-true, bf16-mixed, 16-mixed. For every
(model, precision) the three variants train the same initial weights on the same batches; rounds are
interleaved after a dropped warm-up round and each time is the median over rounds of the time per
step (Trainer construction excluded, CUDA synchronized). Parity is the largest relative difference of
the per-step losses against the hand-written loop over the whole run.

    python bench/gpu_check.py [--steps 300] [--runs 3] [--device cuda] [--no-lightning] [--out FILE.md]

`--device cpu --steps 5 --runs 1` exercises every code path on a machine without a GPU (the 16-mixed
rows then use a CPU GradScaler through plugins=[MixedPrecision("16-mixed", "cpu")]).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
BATCH = 32


class Block(nn.Module):
    """A pre-norm transformer encoder block and a classification head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(32, 256)
        self.block = nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, batch_first=True, norm_first=True)
        self.head = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.embed(x)).mean(dim=1))


def make_net(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
    return Block()


def make_data(kind: str, steps: int) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    shape = (steps * BATCH, 32) if kind == "mlp" else (steps * BATCH, 64, 32)
    x = torch.randn(*shape, generator=g)
    y = torch.randint(0, 10, (steps * BATCH,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=False, pin_memory=torch.cuda.is_available())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def hand_written(kind: str, precision: str, loader: DataLoader, device: str) -> tuple[float, list[float]]:
    """What a user writes by hand: autocast + GradScaler for 16-mixed, autocast for bf16-mixed."""
    net = make_net(kind).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    dev_type = torch.device(device).type
    scaler = torch.amp.GradScaler(dev_type) if precision == "16-mixed" else None
    losses: list[torch.Tensor] = []
    sync(device)
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(dev_type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        losses.append(loss.detach())
    sync(device)
    return time.perf_counter() - start, [float(v) for v in torch.stack(losses).cpu()]


def module_class(base: type, kind: str) -> type:
    class Bench(base):  # type: ignore[misc,valid-type]
        def __init__(self, loader: DataLoader) -> None:
            super().__init__()
            self.net = make_net(kind)
            self.loader = loader
            self.losses: list[torch.Tensor] = []
            self.started = 0.0

        def on_train_start(self) -> None:
            sync(str(self.device))
            self.started = time.perf_counter()

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            self.losses.append(loss.detach())
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

        def train_dataloader(self) -> DataLoader:
            return self.loader

    return Bench


def framework(trainer_cls: type, module_cls: type, precision: str, loader: DataLoader, device: str,
              cpu_fp16_plugin: Callable[[], Any] | None) -> tuple[float, list[float]]:
    model = module_cls(loader)
    kwargs: dict[str, Any] = {"precision": precision}
    if precision == "16-mixed" and device == "cpu" and cpu_fp16_plugin is not None:
        kwargs = {"plugins": [cpu_fp16_plugin()]}
    with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = trainer_cls(accelerator="cuda" if device.startswith("cuda") else "cpu", devices=1, max_epochs=1,
                              logger=False, enable_progress_bar=False, enable_checkpointing=False,
                              enable_model_summary=False, default_root_dir=root, **kwargs)
        trainer.fit(model)
        sync(device)
        elapsed = time.perf_counter() - model.started
    return elapsed, [float(v) for v in torch.stack(model.losses).float().cpu()]


def parity(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / max(abs(y), 1e-6) for x, y in zip(a, b, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--no-lightning", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: CUDA is not available on this machine; run with --device cpu for a dry run.")

    import torchbolt
    from torchbolt.plugins import MixedPrecision

    variants: dict[str, tuple[type, type | None]] = {"torchbolt": (torchbolt.Trainer, torchbolt.LightningModule)}
    if not args.no_lightning:
        try:
            import lightning.pytorch as pl
            from lightning.pytorch.plugins import MixedPrecision as PLMixed
        except ImportError:
            print("lightning is not installed: skipping its column", file=sys.stderr)
        else:
            for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
                logging.getLogger(name).setLevel(logging.ERROR)
            variants["lightning"] = (pl.Trainer, pl.LightningModule)
    plugin_for = {"torchbolt": lambda: MixedPrecision("16-mixed", "cpu")}
    if "lightning" in variants:
        plugin_for["lightning"] = lambda: PLMixed("16-mixed", "cpu")

    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU (dry run)"
    rows = []
    for kind in ("mlp", "block"):
        loader = make_data(kind, args.steps)
        for precision in PRECISIONS:
            times: dict[str, list[float]] = {"hand-written": [], **{n: [] for n in variants}}
            losses: dict[str, list[float]] = {}
            for round_ in range(args.runs + 1):
                t, losses["hand-written"] = hand_written(kind, precision, loader, args.device)
                if round_:
                    times["hand-written"].append(t / args.steps)
                for name, (trainer_cls, base) in variants.items():
                    t, losses[name] = framework(trainer_cls, module_class(base, kind), precision, loader,
                                                args.device, plugin_for.get(name))
                    if round_:
                        times[name].append(t / args.steps)
            med = {n: statistics.median(v) for n, v in times.items()}
            row = [kind, precision, f"{med['hand-written'] * 1e3:.3f}"]
            for name in variants:
                row += [f"{med[name] * 1e3:.3f}", f"{med[name] / med['hand-written']:.2f}x",
                        f"{parity(losses[name], losses['hand-written']):.1e}"]
            rows.append(row)
            print(" | ".join(row), file=sys.stderr)
    header = ["model", "precision", "hand-written ms/step"]
    for name in variants:
        header += [f"{name} ms/step", f"{name} / hand", f"{name} loss rel. diff"]
    lines = [f"GPU: {gpu}; torch {torch.__version__}; {args.steps} steps, median of {args.runs} interleaved rounds "
             "after a warm-up round.", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
