"""Behaviours once found different from Lightning 2.6, each run on both engines and compared.

- `trainer.callback_metrics` / `logged_metrics` across successive fit/validate/test/predict calls;
- CSVLogger's `epoch` column for test metrics written after `fit` (with and without ckpt_path="best");
- the default TensorBoard logger's files when nothing is logged;
- `trainer.state` enums (`TrainerStatus`, `TrainerFn`, `RunningStage`);
- and one deliberate difference: torchbolt loads back a checkpoint this process wrote even when
  `save_hyperparameters` stored objects outside the safe-load allow-list (Lightning refuses).
"""

from __future__ import annotations

import csv
import functools
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

pytestmark = pytest.mark.lightning


def _engine(name: str) -> Any:
    if name == "lightning":
        pl = pytest.importorskip("lightning.pytorch")
        import lightning.pytorch.callbacks
        import lightning.pytorch.loggers  # noqa: F401
        return pl
    import torchbolt
    import torchbolt.callbacks
    import torchbolt.loggers  # noqa: F401

    return torchbolt


def _data(n: int = 16) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return TensorDataset(x, x.sum(1, keepdim=True))


def make_module(pl: Any, quiet: bool = False, **hparams: Any) -> Any:
    class Module(pl.LightningModule):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__()
            if kwargs:
                self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, 1)

        def _loss(self, batch: Any) -> torch.Tensor:
            return torch.nn.functional.mse_loss(self.layer(batch[0]), batch[1])

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = self._loss(batch)
            if not quiet:
                self.log("train_loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            if not quiet:
                self.log("val_loss", self._loss(batch))

        def test_step(self, batch: Any, batch_idx: int) -> None:
            if not quiet:
                self.log("test_loss", self._loss(batch))

        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=4)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=4)

        def test_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=4)

        def predict_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=4)

    return Module(**hparams)


QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


def _both(fn: Any, tmp_path: Path) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn("torchbolt", tmp_path / "torchbolt"), fn("lightning", tmp_path / "lightning")


def test_callback_metrics_across_successive_runs(tmp_path: Path) -> None:
    def run(engine: str, root: Path) -> list[tuple[str, list[str], list[str]]]:
        pl = _engine(engine)
        pl.seed_everything(0, verbose=False)
        trainer = pl.Trainer(max_epochs=2, default_root_dir=str(root), logger=False, enable_checkpointing=False,
                             **QUIET)
        module = make_module(pl)
        seen = []
        for call in ("fit", "validate", "test", "predict", "fit", "validate"):
            kwargs = {} if call in ("fit", "predict") else {"verbose": False}
            getattr(trainer, call)(module, **kwargs)
            seen.append((call, sorted(trainer.callback_metrics), sorted(trainer.logged_metrics)))
        return seen

    ours, ref = _both(run, tmp_path)
    assert ours == ref
    assert ref[2] == ("test", ["test_loss"], ["test_loss"]) and ref[3] == ("predict", [], [])


@pytest.mark.parametrize("variant", ["same_trainer", "ckpt_best", "early_stopped_best"])
def test_csv_epoch_of_test_metrics_after_fit(tmp_path: Path, variant: str) -> None:
    def run(engine: str, root: Path) -> list[dict[str, str]]:
        pl = _engine(engine)
        pl.seed_everything(0, verbose=False)
        callbacks = [pl.callbacks.ModelCheckpoint(monitor="val_loss")]
        if variant == "early_stopped_best":
            # stops after the second epoch (no improvement of 10 is possible), best is still that epoch
            callbacks.append(pl.callbacks.EarlyStopping("val_loss", patience=0, min_delta=10.0))
        trainer = pl.Trainer(max_epochs=3, default_root_dir=str(root), logger=pl.loggers.CSVLogger(str(root)),
                             callbacks=callbacks, **QUIET)
        module = make_module(pl)
        trainer.fit(module)
        trainer.test(module, ckpt_path=None if variant == "same_trainer" else "best", verbose=False)
        trainer.logger.save()
        with open(Path(trainer.logger.log_dir) / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return [{"epoch": r["epoch"], "step": r["step"], "kind": "test" if r.get("test_loss") else "val"}
                for r in rows if r.get("test_loss") or r.get("val_loss")] + [{"current_epoch": str(trainer.current_epoch)}]

    ours, ref = _both(run, tmp_path)
    assert ours == ref
    assert ref[-2]["kind"] == "test"


@pytest.mark.parametrize("entry", ["fit", "test"])
@pytest.mark.parametrize("with_hparams", [False, True])
def test_default_tensorboard_files_when_nothing_is_logged(tmp_path: Path, entry: str, with_hparams: bool) -> None:
    def run(engine: str, root: Path) -> list[str]:
        pl = _engine(engine)
        trainer = pl.Trainer(max_epochs=1, default_root_dir=str(root), enable_checkpointing=False, **QUIET)
        module = make_module(pl, quiet=True, **({"width": 4} if with_hparams else {}))
        getattr(trainer, entry)(module, **({} if entry == "fit" else {"verbose": False}))
        found = []
        for folder, _, files in os.walk(root):
            for name in files:
                kind = "events" if name.startswith("events.out.tfevents.") else name
                found.append(f"{os.path.relpath(folder, root)}/{kind}")
        return sorted(found)

    ours, ref = _both(run, tmp_path)
    assert ours == ref
    assert "lightning_logs/version_0/events" in ref and "lightning_logs/version_0/hparams.yaml" in ref


def test_trainer_state_enums(tmp_path: Path) -> None:
    def run(engine: str, root: Path) -> list[Any]:
        pl = _engine(engine)
        seen: list[Any] = []

        class Watch(pl.Callback):
            def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
                if not seen:
                    self.record(trainer)

            def on_validation_start(self, trainer: Any, *args: Any) -> None:
                self.record(trainer)

            @staticmethod
            def record(trainer: Any) -> None:
                state = trainer.state
                seen.append([(type(v).__name__, getattr(v, "value", v), str(v), f"{v}", v == getattr(v, "value", v),
                              hash(v) == hash(v)) if v is not None else None
                             for v in (state.status, state.fn, state.stage)])

        trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=1,
                             default_root_dir=str(root), logger=False, enable_checkpointing=False,
                             callbacks=[Watch()], **QUIET)
        trainer.fit(make_module(pl))
        state = trainer.state
        seen.append([type(state.status).__name__, state.status == "finished", state.status == "FINISHED",
                     state.fn == "fit", state.stage])
        cls = type(state.fn)
        seen.append([cls.from_str("fitting") == "fit", cls.try_from_str("nope"), cls.from_str("test", "value").name])
        return seen

    ours, ref = _both(run, tmp_path)
    assert ours == ref
    assert ref[0][0][0] == "TrainerStatus" and ref[0][1][0] == "TrainerFn" and ref[0][2][0] == "RunningStage"


def test_checkpoint_written_by_this_process_loads_back(tmp_path: Path) -> None:
    """Lightning refuses `test(ckpt_path="best")` after fit when hparams hold an nn.Module and a
    functools.partial; torchbolt trusts the file it wrote itself (same bytes) and refuses copies."""
    from torchbolt.checkpoint import UnsafeCheckpointError

    def run(engine: str, root: Path) -> Any:
        pl = _engine(engine)
        pl.seed_everything(0, verbose=False)
        trainer = pl.Trainer(max_epochs=1, default_root_dir=str(root), logger=False, **QUIET)
        module = make_module(pl, act=torch.nn.ReLU(), fn=functools.partial(torch.clamp, min=0.0))
        trainer.fit(module)
        try:
            return trainer.test(module, ckpt_path="best", verbose=False), trainer.checkpoint_callback.best_model_path
        except Exception as err:
            return type(err).__name__, trainer.checkpoint_callback.best_model_path

    (ours, best), (ref, _) = _both(run, tmp_path)
    assert ref == "UnpicklingError"  # Lightning's refusal, measured
    assert isinstance(ours, list) and "test_loss" in ours[0]

    import torchbolt

    copy = tmp_path / "copy.ckpt"
    shutil.copy(best, copy)  # same bytes, but not a file this process wrote
    trainer = torchbolt.Trainer(logger=False, **QUIET)
    module = make_module(torchbolt, act=torch.nn.ReLU(), fn=functools.partial(torch.clamp, min=0.0))
    with pytest.raises(UnsafeCheckpointError) as info:
        trainer.test(module, ckpt_path=str(copy), verbose=False)
    message = str(info.value)
    assert "hyper_parameters 'act', 'fn'" in message
    assert "save_hyperparameters(ignore=['act', 'fn'])" in message

    with open(best, "ab") as f:  # a file changed since it was written is no longer trusted
        f.write(b"\0")
    with pytest.raises(Exception, match="corrupt|Refusing"):
        trainer.test(module, ckpt_path=best, verbose=False)
