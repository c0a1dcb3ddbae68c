"""Tuner (issue 12): lr_find and scale_batch_size against Lightning on the same seed, the finder callbacks,
restoring the model afterwards, out-of-memory handling, and the JSON summary for the editor."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import torch
import torchbolt as tb
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.callbacks import BatchSizeFinder, LearningRateFinder
from torchbolt.tuner import Tuner
from torchbolt.utilities.exceptions import MisconfigurationException


def _module_cls(base: type, oom_above: int | None = None, cpu_oom: bool = False) -> type:
    class Net(base):  # type: ignore[misc, valid-type]
        def __init__(self, lr: float = 1e-3, batch_size: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if oom_above is not None and batch[0].shape[0] > oom_above:
                if cpu_oom:
                    raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return nn.functional.mse_loss(self.net(batch[0]), batch[1])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

        def train_dataloader(self) -> DataLoader:
            x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
            return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=self.hparams.batch_size)

    return Net


def _setup(engine: str, tmp_path: Any, **module_kw: Any) -> tuple[Any, Any, Any]:
    if engine == "lightning":
        pl = pytest.importorskip("lightning.pytorch")
        from lightning.pytorch.tuner import Tuner as TunerCls
    else:
        pl, TunerCls = tb, Tuner
    pl.seed_everything(1)
    model = _module_cls(pl.LightningModule, **module_kw)()
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path / engine))
    return model, trainer, TunerCls(trainer)


@pytest.mark.lightning
@pytest.mark.parametrize("mode", ["exponential", "linear"])
def test_lr_find_equals_lightnings(tmp_path: Any, mode: str) -> None:
    out = {}
    for engine in ("torchbolt", "lightning"):
        model, _, tuner = _setup(engine, tmp_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = tuner.lr_find(model, num_training=40, mode=mode, min_lr=1e-5, max_lr=0.5)
        out[engine] = (result.suggestion(), result.results["lr"], result.results["loss"], model.hparams.lr)
    mine, theirs = out["torchbolt"], out["lightning"]
    assert mine[0] == pytest.approx(theirs[0])
    assert mine[1] == pytest.approx(theirs[1]) and mine[2] == pytest.approx(theirs[2], rel=1e-5)
    assert mine[3] == pytest.approx(mine[0])  # update_attr wrote the suggestion


@pytest.mark.lightning
@pytest.mark.parametrize("mode,kw", [("power", {}), ("power", {"max_trials": 3}), ("binsearch", {"max_trials": 4}),
                                     ("binsearch", {"init_val": 3, "max_val": 100})])
def test_scale_batch_size_equals_lightnings(tmp_path: Any, mode: str, kw: dict[str, Any]) -> None:
    out = {}
    for engine in ("torchbolt", "lightning"):
        model, trainer, tuner = _setup(engine, tmp_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = tuner.scale_batch_size(model, mode=mode, **kw)
            trainer.fit(model)
        out[engine] = (found, model.hparams.batch_size, trainer.global_step)
    assert out["torchbolt"] == out["lightning"]


def _eval_module_cls(base: type, oom_above: int | None) -> type:
    """A module whose evaluation and prediction steps "run out of memory" above a batch size."""

    def check(batch: Any) -> None:
        if oom_above is not None and batch[0].shape[0] > oom_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    class EvalNet(_module_cls(base)):  # type: ignore[misc]
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            check(batch)
            self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def test_step(self, batch: Any, batch_idx: int) -> None:
            check(batch)
            self.log("test_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            check(batch)
            return self.net(batch[0])

        def _loader(self) -> DataLoader:
            x = torch.randn(100, 8, generator=torch.Generator().manual_seed(0))
            return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=self.hparams.batch_size)

        val_dataloader = test_dataloader = predict_dataloader = _loader

    return EvalNet


@pytest.mark.lightning
@pytest.mark.parametrize("method,mode,oom_above,kw,expected", [
    ("validate", "power", None, {}, 128),  # doubles past the 100 samples
    ("validate", "binsearch", 24, {}, 22),  # settles between the sizes that fit and failed, less 5%
    ("test", "power", 24, {}, 16),  # the last size that fit
    ("predict", "binsearch", None, {"max_trials": 3}, 7),  # three successes: 8, less 5%
])
def test_scale_batch_size_for_evaluation_equals_lightnings(tmp_path: Any, method: str, mode: str,
                                                           oom_above: int | None, kw: dict[str, Any],
                                                           expected: int) -> None:
    """Trials are batches of the validate / test / predict run: the size found, the size left on the
    module and the run that follows with it are Lightning's; the Trainer's settings are put back."""
    out = {}
    for engine in ("torchbolt", "lightning"):
        pl = tb if engine == "torchbolt" else pytest.importorskip("lightning.pytorch")
        tuner_cls = Tuner if engine == "torchbolt" else pytest.importorskip("lightning.pytorch.tuner").Tuner
        pl.seed_everything(1)
        model = _eval_module_cls(pl.LightningModule, oom_above)()
        trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, limit_val_batches=4, default_root_dir=str(tmp_path / engine))
        callbacks = list(trainer.callbacks)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = tuner_cls(trainer).scale_batch_size(model, method=method, mode=mode, **kw)
            assert trainer.callbacks == callbacks and trainer.limit_val_batches == 4
            assert trainer.limit_test_batches == trainer.limit_predict_batches == 1.0
            assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
            if method == "predict":
                after = len(trainer.predict(model))
            else:
                after = getattr(trainer, method)(model, verbose=False)[0]
        out[engine] = (found, model.hparams.batch_size, after)
    mine, theirs = out["torchbolt"], out["lightning"]
    assert mine[:2] == theirs[:2]
    assert mine[2] == pytest.approx(theirs[2])
    assert mine[0] == expected


@pytest.mark.lightning
@pytest.mark.parametrize("method", ["validate", "predict"])
def test_batch_size_finder_callback_runs_on_with_the_size_found(tmp_path: Any, method: str) -> None:
    """As a callback the finder searches at the start of the run, then the run itself goes on with
    dataloaders of the size found (Lightning's loop picks up the rebuilt loaders)."""
    out = {}
    for engine in ("torchbolt", "lightning"):
        pl = tb if engine == "torchbolt" else pytest.importorskip("lightning.pytorch")
        pl.seed_everything(1)
        model = _eval_module_cls(pl.LightningModule, 24)()
        sizes: list[int] = []

        class Sizes(pl.Callback):  # type: ignore[misc, name-defined]
            def on_validation_batch_start(self, trainer: Any, pl_module: Any, batch: Any, *args: Any,
                                          _sizes: list[int] = sizes) -> None:
                _sizes.append(batch[0].shape[0])

            on_predict_batch_start = on_validation_batch_start

        finder = pl.callbacks.BatchSizeFinder()
        trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                             callbacks=[finder, Sizes()], default_root_dir=str(tmp_path / engine))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = trainer.validate(model, verbose=False) if method == "validate" else trainer.predict(model)
        out[engine] = (finder.optimal_batch_size, sizes, result[0] if method == "validate" else len(result))
    assert out["torchbolt"][:2] == out["lightning"][:2]
    assert out["torchbolt"][2] == pytest.approx(out["lightning"][2])
    assert out["torchbolt"][1] == [16] * 6 + [4]


def test_batch_size_finder_refuses_dataloaders_passed_directly(tmp_path: Any) -> None:
    model = _eval_module_cls(tb.LightningModule, None)()
    trainer = tb.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[BatchSizeFinder()], default_root_dir=str(tmp_path))
    with pytest.raises(MisconfigurationException, match=r"passed directly to `.validate\(\)`"):
        trainer.validate(model, dataloaders=model.val_dataloader())
    trainer = tb.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[BatchSizeFinder()], default_root_dir=str(tmp_path))
    loader = model.test_dataloader()
    model.test_dataloader = lambda: [loader, loader]
    with pytest.raises(MisconfigurationException, match="multiple test dataloaders"):
        trainer.test(model)


def test_tuning_restores_weights_and_progress(tmp_path: Any) -> None:
    model, trainer, tuner = _setup("torchbolt", tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuner.lr_find(model, num_training=20, update_attr=False)
    tuner.scale_batch_size(model, max_trials=2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert trainer.global_step == 0 and model.hparams.lr == 1e-3
    assert not any(isinstance(cb, (LearningRateFinder, BatchSizeFinder)) for cb in trainer.callbacks)
    trainer.fit(model)
    assert trainer.global_step == 3 * (256 // model.hparams.batch_size)


def test_learning_rate_finder_callback_trains_with_the_suggestion(tmp_path: Any) -> None:
    tb.seed_everything(1)
    model = _module_cls(tb.LightningModule)()
    finder = LearningRateFinder(num_training_steps=30, min_lr=1e-5, max_lr=0.5)
    trainer = tb.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[finder], default_root_dir=str(tmp_path))
    trainer.fit(model)
    suggested = finder.optimal_lr.suggestion()
    assert suggested is not None and model.hparams.lr == suggested
    assert trainer.optimizers[0].param_groups[0]["lr"] == suggested
    assert trainer.global_step == 64  # the real run starts from step 0 after the search


def test_oom_stops_the_power_search_at_the_last_size_that_fit(tmp_path: Any) -> None:
    model, trainer, tuner = _setup("torchbolt", tmp_path, oom_above=40)
    assert tuner.scale_batch_size(model, mode="power") == 32
    model, trainer, tuner = _setup("torchbolt", tmp_path, oom_above=40)
    assert tuner.scale_batch_size(model, mode="binsearch", margin=0.0) == 40


def test_cpu_allocation_failure_stops_the_search_clearly(tmp_path: Any, caplog: Any) -> None:
    model, _, tuner = _setup("torchbolt", tmp_path, oom_above=20, cpu_oom=True)
    with caplog.at_level("INFO", logger="torchbolt.tuner.batch_size_scaling"):
        assert tuner.scale_batch_size(model, mode="power") == 16
    assert "ran on CPU" in caplog.text and "failed" in caplog.text


def test_other_errors_are_not_taken_for_oom(tmp_path: Any) -> None:
    class Broken(_module_cls(tb.LightningModule)):  # type: ignore[misc]
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            raise RuntimeError("shape mismatch")

    trainer = tb.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        Tuner(trainer).scale_batch_size(Broken())


def test_tuner_argument_errors(tmp_path: Any) -> None:
    model, trainer, tuner = _setup("torchbolt", tmp_path)
    with pytest.raises(MisconfigurationException, match="only valid configuration"):
        tuner.lr_find(model, method="validate")
    with pytest.raises(MisconfigurationException, match="`dataloaders` argument should be None"):
        tuner.scale_batch_size(model, dataloaders=[])
    with pytest.raises(ValueError, match="margin"):
        tuner.scale_batch_size(model, margin=1.5)
    with pytest.raises(MisconfigurationException, match="Field bs not found"):
        tuner.scale_batch_size(model, batch_arg_name="bs")

    class NoLr(_module_cls(tb.LightningModule)):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            del self.hparams["lr"]

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(AttributeError, match="`lr` or `learning_rate`"):
        tuner.lr_find(NoLr())


def test_lr_find_summary_json_and_plot(tmp_path: Any, monkeypatch: Any) -> None:
    target = tmp_path / "lr.json"
    monkeypatch.setenv("TORCHBOLT_LR_FIND_SUMMARY", str(target))
    model, _, tuner = _setup("torchbolt", tmp_path)
    result = tuner.lr_find(model, num_training=30)
    data = json.loads(target.read_text())
    assert data["suggested_lr"] == result.suggestion() and len(data["lr"]) == len(data["loss"]) == 30
    try:
        import matplotlib
    except ImportError:
        with pytest.raises(MisconfigurationException, match="pip install -U matplotlib"):
            result.plot()
    else:
        matplotlib.use("Agg")
        fig = result.plot(suggest=True)
        assert fig.axes[0].get_xscale() == "log"
