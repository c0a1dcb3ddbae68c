"""torchmetrics `Metric` objects in `self.log` / `self.log_dict`: the same values as real Lightning.

One module definition runs on both engines with the same seed; a recording logger and callback capture
every `log_metrics` call and `trainer.callback_metrics` after each training batch and each epoch.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torchmetrics = pytest.importorskip("torchmetrics")
from torchmetrics import MetricCollection  # noqa: E402
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score  # noqa: E402

CLASSES = 3


def _engine(name: str) -> Any:
    if name == "lightning":
        return pytest.importorskip("lightning.pytorch")
    import torchbolt
    import torchbolt.loggers

    torchbolt.loggers  # noqa: B018  (the package attribute, as pl.loggers)
    return torchbolt


def _data(seed: int, n: int = 40) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


def make_module(pl: Any, style: str) -> Any:
    class Classifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(5, CLASSES)
            self.train_acc = MulticlassAccuracy(num_classes=CLASSES, average="micro")
            self.val_acc = MulticlassAccuracy(num_classes=CLASSES, average="micro")
            self.test_metrics = MetricCollection(
                {"acc": MulticlassAccuracy(num_classes=CLASSES, average="micro"),
                 "f1": MulticlassF1Score(num_classes=CLASSES, average="macro")}, prefix="test_")

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            logits = self.layer(x)
            loss = F.cross_entropy(logits, y)
            if style == "forward":
                self.train_acc(logits, y)  # forward: the batch value feeds on_step
            else:
                self.train_acc.update(logits, y)
            self.log("train_acc", self.train_acc, on_step=True, on_epoch=True, prog_bar=True)
            self.log("loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.val_acc.update(self.layer(x), y)
            self.log("val_acc", self.val_acc)  # epoch level: computed and reset at epoch end

        def test_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.test_metrics.update(self.layer(x), y)
            self.log_dict(self.test_metrics)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.5)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(_data(0), batch_size=8)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(_data(1, 24), batch_size=8)

        def test_dataloader(self) -> DataLoader:
            return DataLoader(_data(2, 24), batch_size=8)

    return Classifier


def _plain(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in sorted(metrics.items())}


def run(engine: str, style: str, root: Any) -> dict[str, Any]:
    pl = _engine(engine)
    seen: dict[str, Any] = {"logged": [], "train_batches": [], "epochs": []}

    class Recorder(pl.loggers.Logger):
        name = "rec"
        version = 0

        def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
            seen["logged"].append((step, _plain(metrics)))

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

    class Watch(pl.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            seen["train_batches"].append(_plain(trainer.callback_metrics))

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            seen["epochs"].append(_plain(trainer.callback_metrics))

    pl.seed_everything(7, verbose=False)
    module = make_module(pl, style)()
    trainer = pl.Trainer(max_epochs=2, logger=Recorder(), callbacks=[Watch()], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
                         default_root_dir=str(root), log_every_n_steps=1, accelerator="cpu", devices=1)
    trainer.fit(module)
    seen["after_fit"] = _plain(trainer.callback_metrics)
    seen["pbar"] = {k: round(float(v), 6) for k, v in trainer.progress_bar_metrics.items()}
    seen["test"] = [_plain(r) for r in trainer.test(module, verbose=False)]
    # Lightning resets every logged metric at epoch end: nothing accumulates into the next run.
    seen["states_reset"] = [int(m._update_count) for m in (module.train_acc, module.val_acc)]
    return seen


@pytest.mark.lightning
@pytest.mark.parametrize("style", ["forward", "update"])
def test_metric_objects_log_like_lightning(style: str, tmp_path: Any) -> None:
    ours = run("torchbolt", style, tmp_path / "tb")
    ref = run("lightning", style, tmp_path / "pl")
    for key in ("train_batches", "epochs", "after_fit", "pbar", "test", "states_reset", "logged"):
        assert ours[key] == ref[key], key
    # Sanity of the reference itself: the epoch value is the metric over the epoch, not a mean of steps.
    assert "train_acc_epoch" in ours["after_fit"] and "test_f1" in ours["test"][0]


def test_runtime_does_not_import_torchmetrics() -> None:
    import subprocess

    code = ("import sys, torchbolt\nimport torchbolt.trainer.trainer, torchbolt.core.module\n"
            "print('TM' if 'torchmetrics' in sys.modules else 'NO-TM')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "NO-TM", out.stderr


def test_unattached_metric_names_the_fix(tmp_path: Any) -> None:
    pl = _engine("torchbolt")

    class Loose(make_module(pl, "forward")):  # type: ignore[misc]
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            metric = MulticlassAccuracy(num_classes=CLASSES)  # not an attribute of the module
            metric(self.layer(batch[0]), batch[1])
            self.log("acc", metric)
            return self.layer(batch[0]).sum()

    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=str(tmp_path), limit_val_batches=0)
    with pytest.raises(Exception, match=r"metric_attribute=") as info:
        trainer.fit(Loose())
    assert "train_acc" in str(info.value)  # names the attributes it could have been


DIST_SCRIPT = '''
import json, os, sys
import torch, torch.distributed as dist
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy
import torchbolt as tb

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
dist.init_process_group("gloo", init_method="env://", rank=rank, world_size=world)
g = torch.Generator().manual_seed(5)
preds, target = torch.randn(48, 3, generator=g), torch.randint(0, 3, (48,), generator=g)
preds[:24] = torch.nn.functional.one_hot(target[:24], 3).float()  # rank 0's shard is all correct
shard = slice(rank * 24, (rank + 1) * 24)  # each rank sees half of the data

class Eval(tb.LightningModule):
    def __init__(self):
        super().__init__()
        self.acc = MulticlassAccuracy(num_classes=3, average="micro")
        self.layer = torch.nn.Identity()

    def validation_step(self, batch, batch_idx):
        self.acc.update(batch[0], batch[1])
        self.log("val_acc", self.acc)

    def val_dataloader(self):
        return DataLoader(TensorDataset(preds[shard], target[shard]), batch_size=8)

trainer = tb.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
trainer.validate(Eval(), verbose=False)
local = MulticlassAccuracy(num_classes=3, average="micro", sync_on_compute=False)
local.update(preds[shard], target[shard])
whole = MulticlassAccuracy(num_classes=3, average="micro", sync_on_compute=False)
whole.update(preds, target)
print(json.dumps({"rank": rank, "logged": float(trainer.callback_metrics["val_acc"]),
                  "local": float(local.compute()), "whole": float(whole.compute())}), flush=True)
dist.destroy_process_group()
'''


def test_metric_compute_syncs_across_processes(tmp_path: Any) -> None:
    """Under torch.distributed, the epoch value is torchmetrics' synced compute (all ranks' data); the
    Trainer calls compute on every rank at the same point, or this would hang."""
    import json
    import os
    import socket
    import subprocess

    script = tmp_path / "dist_eval.py"
    script.write_text(DIST_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "PYTHONWARNINGS": "ignore"}
        procs.append(subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert {o["rank"] for o in outs} == {0, 1}
    for o in outs:
        assert o["logged"] == pytest.approx(o["whole"])  # synced, not the rank's own shard
    assert any(o["local"] != pytest.approx(o["whole"]) for o in outs)  # the shards really differ
