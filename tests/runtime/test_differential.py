"""Differential suite: the same modules on torchbolt and on real Lightning 2.6 must behave identically.

Each case builds one module class per engine from a single definition (parameterised by the engine's
base classes), runs it with the same seed and data, and compares: the entry order of every module and
callback hook (with its simple arguments, train/eval mode and grad mode), the loss of every training
step, the final weights (CPU float32, atol 1e-6), the trainer's counters and the logged metrics
(`callback_metrics`, `logged_metrics`, `progress_bar_metrics`).
"""

from __future__ import annotations

import difflib
import enum
import functools
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.catalog import CALLBACK_HOOKS, DATAMODULE_HOOKS, MODULE_HOOKS

pytestmark = pytest.mark.lightning

ATOL = 1e-6
BATCH = 4

#: Module hooks recorded on entry. Step/dataloader hooks are wrapped only when the test module defines
#: them, because defining one changes what a Trainer runs (e.g. a val_dataloader enables validation).
MODULE_RECORDED = tuple(h.name for h in MODULE_HOOKS if h.name != "configure_sharded_model") + (
    "zero_grad", "clip_gradients")
ONLY_IF_DEFINED = frozenset({"training_step", "validation_step", "test_step", "predict_step", "train_dataloader",
                             "val_dataloader", "test_dataloader", "predict_dataloader"})
CALLBACK_RECORDED = tuple(h.name for h in CALLBACK_HOOKS)
DATAMODULE_RECORDED = tuple(h.name for h in DATAMODULE_HOOKS)
#: Hooks whose record also notes the trainer's counters, to compare when global_step/current_epoch move.
COUNTER_HOOKS = frozenset({"on_train_batch_start", "on_train_batch_end", "on_validation_start",
                           "on_train_epoch_end", "on_validation_epoch_end"})
STEP_METHODS = frozenset({"training_step", "validation_step", "test_step", "predict_step"})


@dataclass(frozen=True)
class Engine:
    name: str
    LightningModule: type
    Callback: type
    Trainer: type
    seed_everything: Callable[..., Any]
    LightningDataModule: type


def _engine(name: str) -> Engine:
    if name == "lightning":
        pl = pytest.importorskip("lightning.pytorch")
        return Engine(name, pl.LightningModule, pl.Callback, pl.Trainer, pl.seed_everything,
                      pl.LightningDataModule)
    import torchbolt

    return Engine(name, torchbolt.LightningModule, torchbolt.Callback, torchbolt.Trainer,
                  torchbolt.seed_everything, torchbolt.LightningDataModule)


# --------------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------------
def _simple(value: Any) -> Any:
    """Arguments worth comparing across engines: numbers, strings, None (enums by value)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return ...


def _describe(fn: Callable[..., Any], name: str, args: tuple, kwargs: dict) -> tuple:
    """(name, (param, value)...) for the simple arguments, with defaults applied, so positional vs
    keyword passing and omitted defaults compare equal."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        items = bound.arguments.items()
    except TypeError:
        return (name, "unbindable", len(args), tuple(sorted(kwargs)))
    simple = tuple((k, _simple(v)) for k, v in items if _simple(v) is not ...)
    return (name, *simple)


def _module_wrapper(name: str, orig: Callable[..., Any], prefix: str = "") -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        record = _describe(functools.partial(orig, self), prefix + name, args, kwargs)
        if name in STEP_METHODS:
            record += (("training", self.training), ("grad", torch.is_grad_enabled()))
        if name in COUNTER_HOOKS:
            record += (("global_step", self.trainer.global_step), ("epoch", self.trainer.current_epoch))
        self.calls.append(record)
        return orig(self, *args, **kwargs)

    # A signature but no __wrapped__: Trainers inspect step signatures (dataloader_idx) and treat the
    # hook as overridden, the same way on both engines.
    wrapper.__signature__ = inspect.signature(orig)  # type: ignore[attr-defined]
    wrapper.__name__ = name
    return wrapper


def record_module_hooks(cls: type, base: type) -> type:
    for name in MODULE_RECORDED:
        if name in ONLY_IF_DEFINED and name not in vars(cls):
            continue
        orig = getattr(cls, name, None)
        if orig is not None:
            setattr(cls, name, _module_wrapper(name, orig))
    return cls


def make_datamodule_class(engine: Engine) -> type:
    """A DataModule with the module's data; its transfer hook must win over the module's."""

    class DiffData(engine.LightningDataModule):  # type: ignore[misc,valid-type]
        def __init__(self, case: Case, calls: list) -> None:
            super().__init__()
            self.case = case
            self.calls = calls

        def prepare_data(self) -> None:
            pass

        def setup(self, stage: str) -> None:
            self.train_set = _dataset(self.case.train_batches * BATCH, seed=11)
            self.val_set = _dataset(self.case.val_batches * BATCH, seed=12)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(self.train_set, batch_size=BATCH)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(self.val_set, batch_size=BATCH)

        def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            x, y = batch
            return [x * 2, y]

    for name in DATAMODULE_RECORDED:
        if name in ONLY_IF_DEFINED and name not in vars(DiffData):
            continue
        orig = getattr(DiffData, name, None)
        if orig is not None:
            setattr(DiffData, name, _module_wrapper(name, orig, prefix="DM."))
    return DiffData


def make_recorder(engine: Engine, calls: list) -> Any:
    """A callback of the engine's Callback class that appends 'Callback.<hook>' records to `calls`."""

    class Recorder(engine.Callback):  # type: ignore[misc,valid-type]
        pass

    def hook(name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            record = _describe(functools.partial(orig, self), f"Callback.{name}", args, kwargs)
            if name in COUNTER_HOOKS and args:
                trainer = args[0]
                record += (("global_step", trainer.global_step), ("epoch", trainer.current_epoch))
            calls.append(record)
            return orig(self, *args, **kwargs)

        method.__signature__ = inspect.signature(orig)  # type: ignore[attr-defined]
        return method

    for name in CALLBACK_RECORDED:
        orig = getattr(engine.Callback, name, None)
        if orig is not None:
            setattr(Recorder, name, hook(name, orig))
    return Recorder()


# --------------------------------------------------------------------------------------------------
# The module, written once
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One differential scenario: module options plus Trainer arguments."""

    name: str
    trainer: dict[str, Any] = field(default_factory=dict)
    train_batches: int = 4
    last_batch: int = BATCH  # size of the last training batch (weights the epoch means)
    val_batches: int = 2
    val_loaders: int = 1
    manual: bool = False
    scheduler: str | None = None  # "step" | "epoch" | "plateau"
    rich_logging: bool = False
    lr: float = 0.1
    skip_batch: int | None = None  # training_step returns None for this batch_idx (no optimizer step)
    end_epoch_at: tuple[int, int] | None = None  # (epoch, batch_idx) where on_train_batch_start returns -1
    entry: str = "fit"  # or "validate" | "test" | "predict" (run on a fresh module, no fit)
    datamodule: bool = False  # take the data from a LightningDataModule instead of the module


def _dataset(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = torch.randn(n, 2, generator=g)
    return TensorDataset(x, y)


def make_module_class(engine: Engine) -> type:
    LM = engine.LightningModule

    class DiffModule(LM):  # type: ignore[misc,valid-type]
        def __init__(self, case: Case) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
            self.head = nn.Linear(4, 2)  # the second optimizer's parameters in the manual case
            self.case = case
            self.calls: list = []
            self.losses: list[torch.Tensor] = []
            if case.manual:
                self.automatic_optimization = False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            if self.case.manual:
                opt_a, opt_b = self.optimizers()
                loss_a = F.mse_loss(self(x), y)
                self.manual_backward(loss_a)
                opt_a.step()
                opt_a.zero_grad()
                self.toggle_optimizer(opt_b)
                loss_b = F.mse_loss(self.head(x) + self(x).detach(), y)
                self.manual_backward(loss_b)
                opt_b.step()
                opt_b.zero_grad()
                self.untoggle_optimizer(opt_b)
                self.losses += [loss_a.detach().clone(), loss_b.detach().clone()]
                self.log("loss_b", loss_b, prog_bar=True)
                self.log("train_loss", loss_a)
                return None
            loss = F.mse_loss(self(x), y) + 0.01 * self.head.weight.pow(2).sum()
            self.losses.append(loss.detach().clone())
            if batch_idx == self.case.skip_batch:
                return None
            self.log("train_loss", loss, prog_bar=True)
            if self.case.rich_logging:
                self.log("train_both", loss, on_step=True, on_epoch=True, prog_bar=True)
                self.log("train_max", loss * 2, on_step=False, on_epoch=True, reduce_fx="max")
                self.log("train_sum", float(batch_idx), on_epoch=True, reduce_fx="sum")
                self.log_dict({"dict_a": loss + 1, "dict_b": float(len(x))}, on_step=True, on_epoch=True,
                              logger=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            x, y = batch
            loss = F.mse_loss(self(x), y)
            self.log("val_loss", loss, prog_bar=True)
            if self.case.rich_logging:
                self.log("val_step_and_epoch", loss, on_step=True, on_epoch=True)
                self.log("val_weighted", loss, batch_size=len(x))
                self.log("val_min", loss, reduce_fx="min", prog_bar=True)
            return {"val": loss}

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
            if (self.current_epoch, batch_idx) == self.case.end_epoch_at:
                return -1
            return None

        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            x, y = batch
            loss = F.mse_loss(self(x), y)
            self.log("test_loss", loss)
            self.log("test_max", loss, reduce_fx="max", prog_bar=True)
            return loss

        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            return self(batch[0])

        def test_dataloader(self) -> Any:
            return self.val_dataloader()

        def predict_dataloader(self) -> Any:
            return self.val_dataloader()

        def on_train_epoch_end(self) -> None:
            if self.case.rich_logging:
                self.log("epoch_end_metric", float(self.current_epoch) + 0.5)

        def on_validation_epoch_end(self) -> None:
            if self.case.rich_logging:
                self.log("val_epoch_end_metric", float(self.current_epoch) + 0.25, prog_bar=True)

        def configure_optimizers(self) -> Any:
            case = self.case
            if case.manual:
                return [torch.optim.SGD(self.net.parameters(), lr=case.lr),
                        torch.optim.SGD(self.head.parameters(), lr=case.lr)]
            opt = torch.optim.SGD(self.parameters(), lr=case.lr, momentum=0.5)
            if case.scheduler == "step":
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
            if case.scheduler == "epoch":
                sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
                return [opt], [sched]
            if case.scheduler == "plateau":
                # mode="max" on a falling loss: no improvement, so the LR is cut after every validation.
                sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
            return opt

        def train_dataloader(self) -> DataLoader:
            n = (self.case.train_batches - 1) * BATCH + self.case.last_batch
            return DataLoader(_dataset(n, seed=1), batch_size=BATCH, shuffle=False)

        def val_dataloader(self) -> Any:
            loaders = [DataLoader(_dataset(self.case.val_batches * BATCH, seed=2 + i), batch_size=BATCH)
                       for i in range(self.case.val_loaders)]
            return loaders[0] if len(loaders) == 1 else loaders

    return record_module_hooks(DiffModule, LM)


# --------------------------------------------------------------------------------------------------
# Running one engine
# --------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    calls: list
    losses: list[torch.Tensor]
    weights: dict[str, torch.Tensor]
    counters: dict[str, Any]
    callback_metrics: dict[str, float]
    logged_metrics: dict[str, float]
    progress_bar_metrics: dict[str, float]
    returned: Any = None


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}


def run_case(engine_name: str, case: Case, root: Any) -> Outcome:
    engine = _engine(engine_name)
    module = make_module_class(engine)(case)
    recorder = make_recorder(engine, module.calls)
    trainer = engine.Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, default_root_dir=str(root), callbacks=[recorder],
        **{"max_epochs": 2, **case.trainer},
    )
    data = {"datamodule": make_datamodule_class(engine)(case, module.calls)} if case.datamodule else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if case.entry == "fit":
            returned = trainer.fit(module, **data)
        elif case.entry == "predict":
            returned = trainer.predict(module, **data)
        else:
            returned = getattr(trainer, case.entry)(module, verbose=False, **data)
    return Outcome(
        calls=module.calls,
        losses=module.losses,
        weights={k: v.detach().clone() for k, v in module.state_dict().items()},
        counters={"global_step": trainer.global_step, "current_epoch": trainer.current_epoch,
                  "lr": [g["lr"] for opt in trainer.optimizers for g in opt.param_groups]},
        callback_metrics=_floats(trainer.callback_metrics),
        logged_metrics=_floats(trainer.logged_metrics),
        progress_bar_metrics=_floats(trainer.progress_bar_metrics),
        returned=returned,
    )


def _fmt(calls: list) -> list[str]:
    return [" ".join(str(part) for part in c) for c in calls]


def assert_same(ours: Outcome, ref: Outcome) -> None:
    if ours.calls != ref.calls:
        diff = "\n".join(difflib.unified_diff(_fmt(ref.calls), _fmt(ours.calls), "lightning", "torchbolt",
                                              lineterm="", n=2))
        pytest.fail(f"hook order differs from Lightning:\n{diff}")
    assert len(ours.losses) == len(ref.losses), "number of training steps differs"
    if ref.losses:
        torch.testing.assert_close(torch.stack(ours.losses), torch.stack(ref.losses), atol=ATOL, rtol=0)
    assert ours.weights.keys() == ref.weights.keys()
    for key in ref.weights:
        torch.testing.assert_close(ours.weights[key], ref.weights[key], atol=ATOL, rtol=0, msg=key)
    assert ours.counters == ref.counters, "trainer counters or learning rates differ"
    for attr in ("callback_metrics", "logged_metrics", "progress_bar_metrics"):
        mine, theirs = getattr(ours, attr), getattr(ref, attr)
        assert sorted(mine) == sorted(theirs), f"{attr} keys differ"
        for key in theirs:
            assert mine[key] == pytest.approx(theirs[key], abs=ATOL), f"{attr}[{key!r}]"
    if isinstance(ref.returned, list) and ref.returned and isinstance(ref.returned[0], dict):
        assert len(ours.returned) == len(ref.returned)  # validate/test: one dict per dataloader
        for mine_d, theirs_d in zip(ours.returned, ref.returned, strict=True):
            assert mine_d == pytest.approx(theirs_d, abs=ATOL)
    elif ref.returned is not None:
        torch.testing.assert_close(ours.returned, ref.returned, atol=ATOL, rtol=0)
    else:
        assert ours.returned is None


CASES = [
    Case("automatic"),
    Case("manual_two_optimizers", manual=True),
    Case("accumulate_3_clip_norm", trainer={"accumulate_grad_batches": 3, "gradient_clip_val": 0.05,
                                            "gradient_clip_algorithm": "norm"}, train_batches=7, lr=0.5),
    Case("scheduler_step", scheduler="step", train_batches=5),
    Case("scheduler_epoch", scheduler="epoch", trainer={"max_epochs": 3}),
    Case("scheduler_plateau", scheduler="plateau", trainer={"max_epochs": 3}),
    Case("val_check_interval_quarter", trainer={"val_check_interval": 0.25}, train_batches=8),
    Case("two_val_dataloaders", val_loaders=2),
    Case("fast_dev_run", trainer={"fast_dev_run": True}),
    Case("fast_dev_run_3", trainer={"fast_dev_run": 3}, train_batches=5, val_batches=4),
    Case("limits", trainer={"limit_train_batches": 0.5, "limit_val_batches": 1}, train_batches=6),
    Case("limit_int_and_no_sanity", trainer={"limit_train_batches": 3, "num_sanity_val_steps": 0}),
    Case("overfit_batches", trainer={"overfit_batches": 2}, train_batches=5),
    Case("log_on_step_and_epoch", rich_logging=True, train_batches=3, last_batch=2, val_batches=3),
    Case("log_two_val_loaders", rich_logging=True, val_loaders=2, train_batches=2),
    Case("check_val_every_2_epochs", trainer={"check_val_every_n_epoch": 2, "max_epochs": 3}),
    Case("max_steps", trainer={"max_steps": 5, "max_epochs": -1}, train_batches=3),
    Case("clip_by_value", trainer={"gradient_clip_val": 0.01, "gradient_clip_algorithm": "value"}, lr=0.5),
    Case("training_step_returns_none", skip_batch=1),
    Case("on_train_batch_start_returns_minus_one", end_epoch_at=(0, 2)),
    Case("reload_dataloaders_every_epoch", trainer={"reload_dataloaders_every_n_epochs": 1, "max_epochs": 3}),
    Case("validate_entry_point", entry="validate", val_loaders=2),
    Case("test_entry_point", entry="test"),
    Case("test_with_limit", entry="test", trainer={"limit_test_batches": 1}, val_loaders=2),
    Case("predict_entry_point", entry="predict"),
    Case("datamodule", datamodule=True),
    Case("datamodule_validate", datamodule=True, entry="validate"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matches_lightning(case: Case, tmp_path: Any) -> None:
    ref = run_case("lightning", case, tmp_path / "lightning")
    ours = run_case("torchbolt", case, tmp_path / "torchbolt")
    assert_same(ours, ref)


def test_recording_sees_the_hooks(tmp_path: Any) -> None:
    """Guards the suite itself: the recorder must see module, callback and nested hooks on Lightning."""
    out = run_case("lightning", Case("automatic"), tmp_path)
    names = [c[0] for c in out.calls]
    for expected in ("configure_optimizers", "Callback.on_fit_start", "on_fit_start", "training_step", "forward",
                     "optimizer_step", "backward", "Callback.on_validation_batch_end", "validation_step"):
        assert expected in names
    assert names.index("Callback.on_fit_start") < names.index("on_fit_start")
    assert len(out.losses) == 8
