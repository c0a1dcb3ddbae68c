"""strategy='ddp_spawn' / 'ddp_fork' on 2 CPU processes, as a user script: the runs happen in processes the
Trainer starts, and this (launching) process reads what came back.

    python spawn_script.py OUT_DIR [--strategy S] [--epochs E] [--shuffle] [--crash-rank R] [--unpicklable] [--sleep]
                           [--devices N] [--num-nodes K] [--fit-only] [--sync-batchnorm] [--engine=lightning]

Writes OUT_DIR/parent.json (what the launching process sees after fit, validate and predict) and
OUT_DIR/weights.pt (the user's module after fit). Each started process leaves an OUT_DIR/pid{PID} file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import torch
from fit_script import CSVLogger, Indexed, Model, tb
from torch.utils.data import DataLoader

if "--engine=lightning" in sys.argv:
    from lightning.pytorch.callbacks import ModelCheckpoint
else:
    from torchbolt.callbacks import ModelCheckpoint


class SpawnModel(Model):
    """fit_script's model (same weights, data and steps) with validation and prediction."""

    def __init__(self, out: str, unpicklable: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.out = out
        if unpicklable:
            self.lock = threading.Lock()  # what a user might keep on the module; pickling refuses it

    def setup(self, stage: str) -> None:
        Path(self.out, f"pid{os.getpid()}").touch()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, _ = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y), sync_dist=True)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.net(batch[0])


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--strategy", default="ddp_spawn")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--crash-rank", type=int, default=-1)
    p.add_argument("--shuffle", action="store_true")
    p.add_argument("--unpicklable", action="store_true")
    p.add_argument("--sleep", action="store_true")  # slow steps, for the signal tests
    p.add_argument("--engine", default="torchbolt")
    p.add_argument("--devices", type=int, default=2)
    p.add_argument("--num-nodes", type=int, default=1)  # NODE_RANK, MASTER_ADDR and MASTER_PORT come from the env
    p.add_argument("--fit-only", action="store_true")
    p.add_argument("--sync-batchnorm", action="store_true")  # with a BatchNorm1d layer in the model
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = SpawnModel(str(out), a.unpicklable, batch=4, crash_rank=a.crash_rank, shuffle=a.shuffle,
                       sleep=a.sleep, batchnorm=a.sync_batchnorm)
    checkpoint = ModelCheckpoint(dirpath=out / "ckpts", monitor="train_loss", save_top_k=1)
    trainer = tb.Trainer(accelerator="cpu", devices=a.devices, num_nodes=a.num_nodes, strategy=a.strategy,
                         max_epochs=a.epochs,
                         logger=CSVLogger(out / "logs"),
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[checkpoint],
                         default_root_dir=out, sync_batchnorm=a.sync_batchnorm)
    trainer.fit(model)
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out / "weights.pt")
    result: dict[str, Any] = {
        "fit": {"callback_metrics": _floats(trainer.callback_metrics),
                "logged_metrics": _floats(trainer.logged_metrics),
                "best_model_path": checkpoint.best_model_path,
                "best_model_score": None if checkpoint.best_model_score is None else float(checkpoint.best_model_score),
                "state": [str(trainer.state.fn.value), str(trainer.state.status.value)],
                "global_step": trainer.global_step, "current_epoch": trainer.current_epoch,
                "log_dir": trainer.log_dir},
    }
    if a.engine == "torchbolt" and not a.fit_only:
        loader = DataLoader(Indexed(), batch_size=4)
        # no model: the best checkpoint of the fit, known here because the checkpoint callback's state came back
        validated = trainer.validate(dataloaders=loader, verbose=False)
        result["validate"] = {"returned": [_floats(d) for d in validated], "ckpt_path": trainer.ckpt_path,
                              "callback_metrics": _floats(trainer.callback_metrics),
                              "state": [str(trainer.state.fn.value), str(trainer.state.status.value)]}
        predictions = trainer.predict(model, dataloaders=loader)
        with torch.no_grad():  # rank 0's predictions (each rank predicts the whole loader)
            expected = model.net(Indexed().x)
        got = torch.cat(predictions)  # type: ignore[arg-type]
        result["predict"] = {"batches": len(predictions),  # type: ignore[arg-type]
                             "max_abs_diff": float((got - expected).abs().max())}
    (out / "parent.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
