"""Gradient accumulation under strategy='ddp' or 'fsdp' on 2 CPU processes, as a user script.

    python accumulate_script.py OUT_DIR [--strategy ddp|fsdp] [--sync-every-batch]

accumulate_grad_batches=2: the micro-batch that does not step runs inside `strategy.no_backward_sync`
(DDP: no all-reduce; FSDP2: no reduce-scatter); with --sync-every-batch the strategy's context does nothing,
so every backward reduces. Every rank writes OUT_DIR/rank{R}.json (how often gradients were reduced across
ranks, how often the loop entered the context, the step count) and rank 0 OUT_DIR/weights.pt.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torchbolt as tb
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.strategies import DDPStrategy, FSDPStrategy, Strategy


def counting(base: type[Strategy]) -> type[Strategy]:
    """`base` counting the loop's use of no_backward_sync (and able to turn it off)."""

    class Counting(base):  # type: ignore[valid-type,misc]
        def __init__(self, sync_every_batch: bool) -> None:
            super().__init__()
            self.sync_every_batch = sync_every_batch
            self.entries = 0

        def no_backward_sync(self, module: nn.Module) -> Any:
            self.entries += 1
            return contextlib.nullcontext() if self.sync_every_batch else super().no_backward_sync(module)

    return Counting


#: FSDP2's gradient reduce-scatters on this rank (torch.distributed.reduce_scatter_single, wrapped in main).
REDUCE_SCATTERS = [0]


def count_reduce_scatters() -> None:
    original = dist.reduce_scatter_single

    def counted(*args: Any, **kwargs: Any) -> Any:
        REDUCE_SCATTERS[0] += 1
        return original(*args, **kwargs)

    dist.reduce_scatter_single = counted


class Model(tb.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
        self.allreduces = 0

    def on_train_start(self) -> None:
        # DDP calls the communication hook once per gradient bucket it reduces.
        # No annotations: DDP checks them, and this module's are strings (postponed evaluation).
        def counting_allreduce(state, bucket):  # type: ignore[no-untyped-def]
            self.allreduces += 1
            tensor = bucket.buffer().div_(dist.get_world_size())
            return dist.all_reduce(tensor, async_op=True).get_future().then(lambda fut: fut.value()[0])

        if isinstance(self.trainer.strategy, DDPStrategy):
            self.trainer.strategy.model.register_comm_hook(None, counting_allreduce)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(1)
        return DataLoader(TensorDataset(torch.randn(32, 8, generator=g), torch.randn(32, 1, generator=g)),
                          batch_size=4)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--sync-every-batch", action="store_true")
    p.add_argument("--strategy", default="ddp", choices=("ddp", "fsdp"))
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    strategy = counting(DDPStrategy if a.strategy == "ddp" else FSDPStrategy)(a.sync_every_batch)
    count_reduce_scatters()
    model = Model()
    trainer = tb.Trainer(accelerator="cpu", devices=2, strategy=strategy, max_epochs=2, accumulate_grad_batches=2,
                         logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=out)
    trainer.fit(model)
    state = {k: v.detach().cpu() for k, v in trainer.strategy.lightning_module_state_dict().items()}  # full (FSDP)
    if trainer.is_global_zero:
        torch.save(state, out / "weights.pt")
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
        {"reductions": model.allreduces + REDUCE_SCATTERS[0], "entries": strategy.entries, "global_step": trainer.global_step}))


if __name__ == "__main__":
    main()
