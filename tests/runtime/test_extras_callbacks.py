"""The extra callbacks (issue 12): differential tests against Lightning 2.6 where the result is
deterministic (SWA and EMA weights, the fine-tuning schedule, prediction-writer files), unit and fit
tests for the rest, and checkpoint round-trips of their state."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import torch
import torchbolt as tb
import torchbolt.loggers
import torchbolt.utilities.exceptions
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt import callbacks as tbc

N, BATCH = 32, 8


def _data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 4, generator=g)
    return TensorDataset(x, (x.sum(1, keepdim=True) > 0).float())


def _model_cls(base: type, *, backbone: bool = False, val: bool = False, sched: bool = False) -> type:
    class Net(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
            self.head = nn.Linear(8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.backbone(x))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.binary_cross_entropy_with_logits(self(x), y)

        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self(batch[0])

        def configure_optimizers(self) -> Any:
            params = self.head.parameters() if backbone else self.parameters()
            opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
            if sched:
                return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)}
            return opt

        def train_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=BATCH)

        def predict_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=BATCH)

    if val:
        def validation_step(self: Any, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", nn.functional.binary_cross_entropy_with_logits(self(x), y))

        def val_dataloader(self: Any) -> DataLoader:
            return DataLoader(_data(), batch_size=BATCH)

        Net.validation_step = validation_step  # type: ignore[attr-defined]
        Net.val_dataloader = val_dataloader  # type: ignore[attr-defined]
    return Net


def _trainer_kwargs(tmp_path: Any, **kw: Any) -> dict[str, Any]:
    return dict(default_root_dir=str(tmp_path), logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, **kw)


def _fit(engine: str, tmp_path: Any, callbacks: list[Any], model_kw: dict[str, Any] | None = None,
         **trainer_kw: Any) -> Any:
    if engine == "lightning":
        pl = pytest.importorskip("lightning.pytorch")
        base, trainer_cls, seed = pl.LightningModule, pl.Trainer, pl.seed_everything
    else:
        base, trainer_cls, seed = tb.LightningModule, tb.Trainer, tb.seed_everything
    seed(7, workers=False)
    model = _model_cls(base, **(model_kw or {}))()
    trainer = trainer_cls(callbacks=callbacks, **_trainer_kwargs(tmp_path / engine, **trainer_kw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model)
    return model, trainer


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5, msg=k)


# --------------------------------------------------------------------------------------------------
# StochasticWeightAveraging
# --------------------------------------------------------------------------------------------------
@pytest.mark.lightning
@pytest.mark.parametrize("strategy,sched", [("cos", False), ("linear", True)])
def test_swa_weights_equal_lightnings(tmp_path: Any, strategy: str, sched: bool) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    mine, _ = _fit("torchbolt", tmp_path, [tbc.StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2,
                                                                         annealing_epochs=2,
                                                                         annealing_strategy=strategy)],
                   {"sched": sched}, max_epochs=5)
    theirs, _ = _fit("lightning", tmp_path, [pl.callbacks.StochasticWeightAveraging(
        swa_lrs=0.05, swa_epoch_start=2, annealing_epochs=2, annealing_strategy=strategy)], {"sched": sched},
        max_epochs=5)
    _assert_same(_weights(mine), _weights(theirs))


def test_swa_rejects_bad_arguments() -> None:
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="swa_epoch_start"):
        tbc.StochasticWeightAveraging(swa_lrs=0.1, swa_epoch_start=0)
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="swa_lrs"):
        tbc.StochasticWeightAveraging(swa_lrs=-1.0)


def test_swa_state_round_trips_through_a_checkpoint(tmp_path: Any) -> None:
    swa = tbc.StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)
    _, trainer = _fit("torchbolt", tmp_path, [swa], max_epochs=3)
    path = tmp_path / "swa.ckpt"
    trainer.save_checkpoint(path)
    state = torch.load(path, weights_only=False)["callbacks"]["StochasticWeightAveraging"]
    assert state["n_averaged"] == 2 and state["latest_update_epoch"] == 2
    assert state["average_model_state"].keys() == swa._average_model.state_dict().keys()
    fresh = tbc.StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)
    fresh.load_state_dict(state)
    assert fresh._init_n_averaged == 2 and fresh._scheduler_state == state["scheduler_state"]


# --------------------------------------------------------------------------------------------------
# WeightAveraging / EMAWeightAveraging
# --------------------------------------------------------------------------------------------------
@pytest.mark.lightning
def test_ema_weights_equal_lightnings(tmp_path: Any) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    kw = dict(decay=0.9, update_every_n_steps=2, update_starting_at_step=1)
    mine, _ = _fit("torchbolt", tmp_path, [tbc.EMAWeightAveraging(**kw)], {"val": True}, max_epochs=2)
    theirs, _ = _fit("lightning", tmp_path, [pl.callbacks.EMAWeightAveraging(**kw)], {"val": True}, max_epochs=2)
    _assert_same(_weights(mine), _weights(theirs))


def test_weight_averaging_checkpoint_holds_average_and_current(tmp_path: Any) -> None:
    cb = tbc.WeightAveraging()
    model, trainer = _fit("torchbolt", tmp_path, [cb], max_epochs=1)
    trainer.save_checkpoint(tmp_path / "wa.ckpt")
    ckpt = torch.load(tmp_path / "wa.ckpt", weights_only=False)
    assert "current_model_state" in ckpt and "n_averaged" in ckpt["averaging_state"]
    assert ckpt["callbacks"]["WeightAveraging"] == {"latest_update_step": trainer.global_step}
    # resume: the module gets the current weights back, the average model the averaged ones
    resumed = tbc.WeightAveraging()
    _, trainer2 = _fit("torchbolt", tmp_path, [resumed], max_epochs=1)
    resumed.on_load_checkpoint(trainer2, trainer2.lightning_module, ckpt)
    _assert_same({k: v for k, v in trainer2.lightning_module.state_dict().items()}, ckpt["current_model_state"])


# --------------------------------------------------------------------------------------------------
# BaseFinetuning / BackboneFinetuning
# --------------------------------------------------------------------------------------------------
def _schedule_recorder(base_cb: type) -> tuple[type, list[Any]]:
    seen: list[Any] = []

    class Recorder(base_cb):  # type: ignore[misc, valid-type]
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            opt = trainer.optimizers[0]
            seen.append(([round(g["lr"], 10) for g in opt.param_groups],
                         all(p.requires_grad for p in pl_module.backbone.parameters())))

    return Recorder, seen


@pytest.mark.lightning
def test_backbone_finetuning_schedule_equals_lightnings(tmp_path: Any) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    results = {}
    for engine, cb_mod, base_cb in (("torchbolt", tbc, tb.Callback), ("lightning", pl.callbacks, pl.Callback)):
        rec_cls, seen = _schedule_recorder(base_cb)
        ft = cb_mod.BackboneFinetuning(unfreeze_backbone_at_epoch=1, backbone_initial_ratio_lr=0.1,
                                       lambda_func=lambda e: 1.5)
        model, _ = _fit(engine, tmp_path, [ft, rec_cls()], {"backbone": True}, max_epochs=4)
        results[engine] = (seen, _weights(model), ft.state_dict()["previous_backbone_lr"])
    assert results["torchbolt"][0] == results["lightning"][0]
    assert results["torchbolt"][0][0] == ([0.1], False) and results["torchbolt"][0][1][1] is True
    assert results["torchbolt"][2] == pytest.approx(results["lightning"][2])
    _assert_same(results["torchbolt"][1], results["lightning"][1])


def test_backbone_finetuning_needs_a_backbone(tmp_path: Any) -> None:
    class NoBackbone(tb.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 1)

    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="backbone"):
        tbc.BackboneFinetuning().freeze_before_training(NoBackbone())


def test_finetuning_param_groups_restore_on_resume(tmp_path: Any) -> None:
    ft = tbc.BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    _, trainer = _fit("torchbolt", tmp_path, [ft], {"backbone": True}, max_epochs=2)
    trainer.save_checkpoint(tmp_path / "ft.ckpt")
    state = torch.load(tmp_path / "ft.ckpt", weights_only=False)["callbacks"]["BackboneFinetuning"]
    groups = state["internal_optimizer_metadata"][0]
    assert [g["params"] for g in groups] == [["head.weight", "head.bias"], ["backbone.0.weight", "backbone.0.bias"]]
    ft2 = tbc.BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    seed_model = _model_cls(tb.LightningModule, backbone=True)()
    t = tb.Trainer(callbacks=[ft2], **_trainer_kwargs(tmp_path / "resume", max_epochs=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(seed_model, ckpt_path=str(tmp_path / "ft.ckpt"))
    assert len(t.optimizers[0].param_groups) == 2
    assert ft2.previous_backbone_lr == pytest.approx(state["previous_backbone_lr"] * 2)


# --------------------------------------------------------------------------------------------------
# BasePredictionWriter
# --------------------------------------------------------------------------------------------------
def _writer_cls(base: type) -> type:
    class Writer(base):  # type: ignore[misc, valid-type]
        def __init__(self, out: Any, interval: str) -> None:
            super().__init__(write_interval=interval)
            self.out = out

        def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Any, batch_indices: Any, batch: Any,
                               batch_idx: int, dataloader_idx: int) -> None:
            torch.save({"pred": prediction, "idx": list(batch_indices)}, self.out / f"batch_{batch_idx}.pt")

        def write_on_epoch_end(self, trainer: Any, pl_module: Any, predictions: Any, batch_indices: Any) -> None:
            torch.save({"preds": predictions, "idx": batch_indices}, self.out / "epoch.pt")

    return Writer


@pytest.mark.lightning
@pytest.mark.parametrize("interval", ["batch", "epoch", "batch_and_epoch"])
def test_prediction_writer_files_equal_lightnings(tmp_path: Any, interval: str) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    written = {}
    for engine, mod, trainer_cls, cb_base in (("torchbolt", tb.LightningModule, tb.Trainer, tbc.BasePredictionWriter),
                                            ("lightning", pl.LightningModule, pl.Trainer,
                                             pl.callbacks.BasePredictionWriter)):
        out = tmp_path / f"out_{engine}"
        out.mkdir()
        torch.manual_seed(3)
        model = _model_cls(mod)()
        trainer = trainer_cls(callbacks=[_writer_cls(cb_base)(out, interval)],
                              **_trainer_kwargs(tmp_path / engine))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.predict(model, return_predictions=False)
        written[engine] = {p.name: torch.load(p, weights_only=False) for p in sorted(out.iterdir())}
    assert written["torchbolt"].keys() == written["lightning"].keys()
    assert written["torchbolt"], "nothing written"
    for name, mine in written["torchbolt"].items():
        theirs = written["lightning"][name]
        assert repr(mine) == repr(theirs), name


def test_prediction_writer_rejects_unknown_interval() -> None:
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="write_interval"):
        tbc.BasePredictionWriter("step")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# SpikeDetection, ThroughputMonitor, DeviceStatsMonitor, ModelPruning, Rich*
# --------------------------------------------------------------------------------------------------
class _Spiky(tb.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return (self.w * 0).sum() + (100.0 if batch_idx == 3 else 1.0)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_data(), batch_size=BATCH)


def test_spike_detection_raises_and_records_batches(tmp_path: Any) -> None:
    from torchbolt.callbacks.spike import TrainingSpikeException

    spike = tbc.SpikeDetection(exclude_batches_path=tmp_path / "skip")
    trainer = tb.Trainer(callbacks=[spike], **_trainer_kwargs(tmp_path, max_epochs=1))
    with pytest.raises(TrainingSpikeException, match="batch 3"):
        trainer.fit(_Spiky())
    assert json.loads((tmp_path / "skip" / "skip_batches.json").read_text()) == [2, 3]
    fresh = tbc.SpikeDetection()
    fresh.load_state_dict(spike.state_dict())
    assert fresh.bad_batches == [2, 3] and fresh.state_dict() == spike.state_dict()


def _spiky_cls(base: type, spike_at: int | None) -> type:
    class Spiky(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return (self.w * 0).sum() + (100.0 if batch_idx == spike_at else 1.0 + 0.1 * batch_idx)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(_data(), batch_size=BATCH)

    return Spiky


@pytest.mark.lightning
def test_spike_detection_state_equals_lightnings_and_round_trips(tmp_path: Any) -> None:
    """The checkpointed state has Lightning's keys and values, after a clean epoch and after a spike; a
    state written by either loads into torchbolt's callback (Lightning's own cannot load it back: its
    load_state_dict reads an attribute it does not have) and a resumed fit restores it."""
    pl = pytest.importorskip("lightning.pytorch")
    from torchbolt.callbacks.spike import TrainingSpikeException

    saved, spiked = {}, {}
    for engine, mod in (("torchbolt", tb), ("lightning", pl)):
        spike = mod.callbacks.SpikeDetection(exclude_batches_path=str(tmp_path / "skip"))
        trainer = mod.Trainer(callbacks=[spike], **_trainer_kwargs(tmp_path / engine, max_epochs=1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(_spiky_cls(mod.LightningModule, None)())
        trainer.save_checkpoint(tmp_path / engine / "clean.ckpt")
        saved[engine] = torch.load(tmp_path / engine / "clean.ckpt", weights_only=False)["callbacks"]["SpikeDetection"]
        spike = mod.callbacks.SpikeDetection(exclude_batches_path=str(tmp_path / "skip"))
        trainer = mod.Trainer(callbacks=[spike], **_trainer_kwargs(tmp_path / engine, max_epochs=1))
        with pytest.raises(Exception, match="Training spike detected in batch 3"):
            trainer.fit(_spiky_cls(mod.LightningModule, 3)())
        spiked[engine] = spike.state_dict()
    assert saved["torchbolt"] == saved["lightning"]
    assert list(saved["torchbolt"]) == list(saved["lightning"])  # same keys, same order
    assert saved["torchbolt"]["last_val"] == pytest.approx(1.3)
    assert spiked["torchbolt"] == spiked["lightning"]
    assert spiked["torchbolt"]["bad_batches"] == [2, 3]
    for state in (saved["lightning"], spiked["lightning"], spiked["torchbolt"]):
        fresh = tbc.SpikeDetection()
        fresh.load_state_dict(dict(state))
        assert fresh.state_dict() == state

    # a resumed fit gives the callback its saved state before training goes on
    restored: dict[str, Any] = {}

    class Snapshot(tb.Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            restored.update(next(c for c in trainer.callbacks if isinstance(c, tbc.SpikeDetection)).state_dict())

    trainer = tb.Trainer(callbacks=[tbc.SpikeDetection(), Snapshot()],
                         **_trainer_kwargs(tmp_path / "resumed", max_epochs=2))
    with pytest.raises(TrainingSpikeException):  # batch 3 of the second epoch spikes
        trainer.fit(_spiky_cls(tb.LightningModule, 3)(), ckpt_path=str(tmp_path / "torchbolt" / "clean.ckpt"))
    assert restored == saved["torchbolt"]


def test_throughput_monitor_logs_rates(tmp_path: Any) -> None:
    logger = tb.loggers.CSVLogger(tmp_path)
    monitor = tbc.ThroughputMonitor(batch_size_fn=lambda b: b[0].shape[0], window_size=2)
    model = _model_cls(tb.LightningModule)()
    trainer = tb.Trainer(default_root_dir=tmp_path, logger=logger, callbacks=[monitor], log_every_n_steps=1,
                         max_epochs=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model)
    text = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    header = text.splitlines()[0].split(",")
    for key in ("train/samples", "train/batches", "train/samples_per_sec", "train/device/batches_per_sec"):
        assert key in header, header
    assert monitor._samples["train"] == N


def test_device_stats_monitor_logs_cpu_stats(tmp_path: Any) -> None:
    pytest.importorskip("psutil")
    logger = tb.loggers.CSVLogger(tmp_path)
    trainer = tb.Trainer(default_root_dir=tmp_path, logger=logger, callbacks=[tbc.DeviceStatsMonitor()],
                         log_every_n_steps=1, max_epochs=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_model_cls(tb.LightningModule)())
    header = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "DeviceStatsMonitor.on_train_batch_end/cpu_percent" in header


def test_device_stats_monitor_needs_a_logger(tmp_path: Any) -> None:
    trainer = tb.Trainer(callbacks=[tbc.DeviceStatsMonitor(cpu_stats=False)], **_trainer_kwargs(tmp_path,
                                                                                                 max_epochs=1))
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="logger=False"):
        trainer.fit(_model_cls(tb.LightningModule)())


@pytest.mark.lightning
def test_model_pruning_equals_lightnings(tmp_path: Any) -> None:
    pl = pytest.importorskip("lightning.pytorch")
    kw = dict(pruning_fn="l1_unstructured", amount=0.3, use_lottery_ticket_hypothesis=True)
    mine, t1 = _fit("torchbolt", tmp_path, [tbc.ModelPruning(**kw)], max_epochs=2)
    theirs, _ = _fit("lightning", tmp_path, [pl.callbacks.ModelPruning(**kw)], max_epochs=2)
    _assert_same(_weights(mine), _weights(theirs))
    zeros = sum(int((p == 0).sum()) for p in mine.parameters())
    total = sum(p.numel() for p in mine.parameters())
    assert zeros / total == pytest.approx(1 - 0.7 ** 2, abs=0.03)


def test_model_pruning_validates_arguments() -> None:
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="pruning_dim"):
        tbc.ModelPruning("ln_structured", use_global_unstructured=False)
    with pytest.raises(tb.utilities.exceptions.MisconfigurationException, match="isn't available"):
        tbc.ModelPruning("l3_magic")


def test_rich_callbacks_run_a_fit(tmp_path: Any, capsys: Any) -> None:
    pytest.importorskip("rich")
    model = _model_cls(tb.LightningModule, val=True)()
    trainer = tb.Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False, max_epochs=2,
                         callbacks=[tbc.RichProgressBar(leave=True, console_kwargs={"force_terminal": True}),
                                    tbc.RichModelSummary(max_depth=2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model)
    out = capsys.readouterr().out
    assert "backbone.0" in out and "Trainable params" in out
    assert "Epoch 1/1" in out


def test_rich_missing_gives_lightnings_message(monkeypatch: Any) -> None:
    from torchbolt.callbacks import rich_progress

    monkeypatch.setattr(rich_progress, "_rich_available", lambda: False)
    with pytest.raises(ModuleNotFoundError, match=r"`RichProgressBar` requires `rich` >= 10.2.2. Install it by "
                                                  r"running `pip install -U rich`."):
        rich_progress.RichProgressBar()
    with pytest.raises(ModuleNotFoundError, match=r"`RichModelSummary` requires `rich` to be installed"):
        rich_progress.RichModelSummary()


    # without rich the Trainer's defaults are the plain bar and summary (Lightning's fallback)
    trainer = tb.Trainer(logger=False, max_epochs=1)
    assert [type(cb).__name__ for cb in trainer.callbacks] == ["TQDMProgressBar", "ModelSummary", "ModelCheckpoint"]


@pytest.mark.lightning
def test_default_bar_and_summary_are_rich_as_in_lightning(tmp_path: Any, capsys: Any) -> None:
    """With rich installed and no bar given, the defaults are RichProgressBar and RichModelSummary in both;
    a fit with them runs and prints the summary table and no stray bar lines on a non-terminal."""
    pl = pytest.importorskip("lightning.pytorch")
    pytest.importorskip("rich")
    names = {}
    for engine, mod in (("torchbolt", tb), ("lightning", pl)):
        trainer = mod.Trainer(logger=False, max_epochs=1, default_root_dir=str(tmp_path / engine))
        names[engine] = [type(cb).__name__ for cb in trainer.callbacks]
    assert names["torchbolt"] == names["lightning"] == ["RichProgressBar", "RichModelSummary", "ModelCheckpoint"]
    capsys.readouterr()
    trainer = tb.Trainer(logger=False, max_epochs=2, default_root_dir=str(tmp_path / "run"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(_model_cls(tb.LightningModule, val=True)())
    out = capsys.readouterr().out
    assert "Trainable params" in out and "backbone" in out
    assert trainer.global_step == 8 and trainer.progress_bar_callback.progress is None  # the live display ended


def test_rich_bar_prints_plain_lines_when_not_on_a_terminal(tmp_path: Any, capsys: Any) -> None:
    """On a pipe (CI logs, the editor's output panel) the default rich bar starts no live display: it prints
    the plain bar's lines, one per finished epoch and run, and prints from the user stay as they are."""
    pytest.importorskip("rich")

    class Talky(_model_cls(tb.LightningModule, val=True)):  # type: ignore[misc]
        def on_train_epoch_end(self) -> None:
            print("x" * 120)  # a live display would re-wrap this at the console's width

    trainer = tb.Trainer(logger=False, max_epochs=2, enable_model_summary=False, default_root_dir=str(tmp_path))
    assert isinstance(trainer.progress_bar_callback, tbc.RichProgressBar)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Talky())
        trainer.validate(Talky(), verbose=False)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("Epoch ")] == ["Epoch 1/2", "Epoch 2/2"]
    assert any(line.startswith("Validation: 4/4") for line in lines)
    assert lines.count("x" * 120) == 2
    assert trainer.progress_bar_callback.progress is None  # no rich display was ever started
    # forced onto a terminal (console_kwargs), it draws with rich
    bar = tbc.RichProgressBar(leave=True, console_kwargs={"force_terminal": True})
    trainer = tb.Trainer(logger=False, max_epochs=1, enable_model_summary=False, callbacks=[bar],
                         default_root_dir=str(tmp_path))
    trainer.fit(_model_cls(tb.LightningModule)())
    assert "Epoch 0/0" in capsys.readouterr().out and bar._plain is None
    # a RichModelSummary given by the user is the summary: no second one is added
    trainer = tb.Trainer(logger=False, max_epochs=1, callbacks=[tbc.RichModelSummary()])
    assert sum(isinstance(cb, tbc.ModelSummary) for cb in trainer.callbacks) == 1


@pytest.mark.lightning
@pytest.mark.parametrize(("val", "limit"), [(False, 1.0), (True, 0.5)])
def test_swa_with_batch_norm_equals_lightning(tmp_path: Any, val: bool, limit: float) -> None:
    """With batch norm, the statistics are rebuilt for the averaged weights by an extra epoch, as in
    Lightning: same batches (the limit applies, the shuffle continues), cumulative averages, no backward, and
    the last batch's optimizer step with the gradients left over (without validation they are the last
    epoch's, so the final weights move off the average exactly as Lightning's do). Weights, statistics,
    epoch and step counters, logged metrics and the learning rate all end equal."""
    pl = pytest.importorskip("lightning.pytorch")
    runs: dict[str, Any] = {}
    for engine, mod in (("torchbolt", tb), ("lightning", pl)):
        seen: list[tuple[int, int]] = []

        class WithBN(_model_cls(mod.LightningModule, val=val)):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh())

            def training_step(self, batch: Any, batch_idx: int, _seen: list = seen) -> torch.Tensor:
                _seen.append((self.current_epoch, batch_idx))
                loss = super().training_step(batch, batch_idx)
                self.log("train_loss", loss)
                return loss

            def train_dataloader(self) -> DataLoader:
                return DataLoader(_data(), batch_size=BATCH, shuffle=True)

        mod.seed_everything(7, workers=False)
        model = WithBN()
        trainer = mod.Trainer(callbacks=[mod.callbacks.StochasticWeightAveraging(swa_lrs=0.05, swa_epoch_start=2)],
                              **_trainer_kwargs(tmp_path / engine, max_epochs=4, limit_train_batches=limit))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model)
        bn = model.backbone[1]
        runs[engine] = (_weights(model), seen, trainer.current_epoch, trainer.global_step, trainer.max_epochs,
                        {k: float(v) for k, v in trainer.callback_metrics.items()},
                        trainer.optimizers[0].param_groups[0]["lr"], bn.momentum)
    mine, theirs = runs["torchbolt"], runs["lightning"]
    _assert_same(mine[0], theirs[0])
    assert mine[1] == theirs[1]  # the same batches, the extra epoch's included
    assert mine[1][-1][0] == 4 and mine[2:5] == theirs[2:5] == ((5, 17, 4) if limit == 1.0 else (5, 9, 4))
    assert mine[5] == pytest.approx(theirs[5]) and mine[6] == pytest.approx(theirs[6])
    assert mine[7] == theirs[7] == 0.1  # the momentum is given back
