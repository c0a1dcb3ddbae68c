"""Profilers (issue 12): the classes on their own, `Trainer(profiler=...)`, Lightning's action names, the
report file and the JSON summary the editor reads."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import warnings
from typing import Any

import pytest
import torch
import torchbolt as tb
import torchbolt.profilers as tbp
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.utilities.exceptions import MisconfigurationException, TrainerArgumentError


def test_simple_profiler_records_and_reports() -> None:
    prof = tbp.SimpleProfiler()
    for _ in range(3):
        with prof.profile("a"):
            time.sleep(0.001)
    with prof.profile("b"):
        pass
    assert len(prof.recorded_durations["a"]) == 3 and len(prof.recorded_durations["b"]) == 1
    text = prof.summary()
    assert "Profiler Report" in text and "Num calls" in text and "Percentage %" in text
    lines = [line for line in text.splitlines() if line.startswith("|  a")]
    assert lines and "3" in lines[0].split("|")[3]
    plain = tbp.SimpleProfiler(extended=False)
    with plain.profile("x"):
        pass
    assert "Num calls" not in plain.summary() and "|  x" in plain.summary()
    with pytest.raises(ValueError, match="never started"):
        prof.stop("nope")
    prof.start("c")
    with pytest.raises(ValueError, match="already started"):
        prof.start("c")


def test_timer_records_like_start_stop_and_keeps_subclass_overrides() -> None:
    """`Profiler.timer(action)` (what the Trainer times hooks and steps with) records exactly what
    start/stop record; SimpleProfiler's inline version keeps their errors, and a subclass overriding
    start/stop still has its overrides called."""
    prof = tbp.SimpleProfiler()
    run = prof.timer("a")
    assert run(lambda x, y: x + y, 2, 3) == 5
    with pytest.raises(RuntimeError, match="boom"):
        run(lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert len(prof.recorded_durations["a"]) == 2 and prof.current_actions == {}
    assert all(d >= 0 for d in prof.recorded_durations["a"])
    # the same action nested inside itself is refused, as start() refuses it
    with pytest.raises(ValueError, match="already started"):
        run(lambda: run(lambda: None))
    # stopped from inside (misuse) is reported like stop() of an action never started
    with pytest.raises(ValueError, match="never started"):
        run(lambda: prof.stop("a"))

    seen: list[str] = []

    class Counting(tbp.SimpleProfiler):
        def start(self, action_name: str) -> None:
            seen.append("start " + action_name)
            super().start(action_name)

    counting = Counting()
    assert counting.timer("b")(max, 1, 4) == 4
    assert seen == ["start b"] and len(counting.recorded_durations["b"]) == 1

    class Log(tbp.Profiler):
        def start(self, action_name: str) -> None:
            seen.append("+" + action_name)

        def stop(self, action_name: str) -> None:
            seen.append("-" + action_name)

    assert Log().timer("c")(seen.append, "body") is None
    assert seen[-3:] == ["+c", "body", "-c"]


def test_profiler_writes_report_file_and_json_summary(tmp_path: Any, monkeypatch: Any) -> None:
    summary = tmp_path / "summary.json"
    monkeypatch.setenv("TORCHBOLT_PROFILER_SUMMARY", str(summary))
    prof = tbp.SimpleProfiler(dirpath=tmp_path / "prof", filename="perf")
    prof.setup(stage="fit")
    with prof.profile("run_training_epoch"):
        with prof.profile("run_training_batch"):
            pass
    prof.describe()
    report = tmp_path / "prof" / "fit-perf.txt"
    assert "FIT Profiler Report" in report.read_text()
    data = json.loads(summary.read_text())
    assert data["profiler"] == "SimpleProfiler" and data["stage"] == "fit"
    assert data["report_file"] == str(report)
    assert [a["name"] for a in data["actions"]][0] == "run_training_epoch"
    assert {"name", "mean_s", "count", "total_s", "percent"} <= set(data["actions"][0])


def test_advanced_profiler_reports_cprofile_stats_and_dumps(tmp_path: Any) -> None:
    prof = tbp.AdvancedProfiler(dirpath=tmp_path, filename="adv", dump_stats=True)
    prof.setup(stage="fit")
    with prof.profile("work"):
        sum(i * i for i in range(1000))
    text = prof.summary()
    assert "Profile stats for: work" in text and "cumulative" in text
    assert (tmp_path / "fit-adv-work.prof").exists()
    with pytest.raises(ValueError, match="never started"):
        prof.stop("other")


def test_passthrough_and_xla() -> None:
    prof = tbp.PassThroughProfiler()
    with prof.profile("x"):
        pass
    assert prof.summary() == ""
    with pytest.raises(ModuleNotFoundError, match="XLAProfiler is not available"):
        tbp.XLAProfiler()
    with pytest.raises(ModuleNotFoundError, match="XLAProfiler is not available"):
        tb.Trainer(profiler="xla")


def test_trainer_profiler_argument_is_validated() -> None:
    with pytest.raises(TrainerArgumentError, match="Did you mean 'simple'"):
        tb.Trainer(profiler="simpel")
    with pytest.raises(TrainerArgumentError, match="profiler=42.0"):
        tb.Trainer(profiler=42.0)  # type: ignore[arg-type]
    with pytest.raises(MisconfigurationException, match="not a Profiler"):
        tb.Trainer(profiler=object())
    assert isinstance(tb.Trainer(logger=False).profiler, tbp.PassThroughProfiler)
    assert isinstance(tb.Trainer(profiler="ADVANCED", logger=False).profiler, tbp.AdvancedProfiler)
    with pytest.raises(TrainerArgumentError, match="barebones"):
        tb.Trainer(profiler="simple", barebones=True)


# --------------------------------------------------------------------------------------------------
# With the Trainer
# --------------------------------------------------------------------------------------------------
def _module_cls(base: type) -> type:
    class Net(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 1)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("loss", loss)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            self.log("v", self.layer(batch[0]).mean())

        def test_step(self, batch: Any, batch_idx: int) -> None:
            self.log("t", self.layer(batch[0]).mean())

        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self.layer(batch[0])

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(TensorDataset(torch.randn(8, 4)), batch_size=4)

        val_dataloader = test_dataloader = predict_dataloader = train_dataloader

    return Net


def _callback_cls(base: type) -> type:
    class Recorder(base):  # type: ignore[misc, valid-type]
        def on_train_batch_end(self, *args: Any) -> None:
            return None

    return Recorder


def _profiled_names(engine: str, fn: str, tmp_path: Any, **trainer_kwargs: Any) -> dict[str, int]:
    if engine == "lightning":
        pl = pytest.importorskip("lightning.pytorch")
        prof = pl.profilers.SimpleProfiler()
    else:
        pl = tb
        prof = tbp.SimpleProfiler()
    trainer = pl.Trainer(max_epochs=2, profiler=prof, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[_callback_cls(pl.Callback)()],
                         default_root_dir=str(tmp_path / engine), **trainer_kwargs)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        getattr(trainer, fn)(_module_cls(pl.LightningModule)())
    return {k: len(v) for k, v in prof.recorded_durations.items()}


@pytest.mark.lightning
@pytest.mark.parametrize("fn", ["fit", "validate", "test", "predict"])
def test_simple_profiler_action_names_equal_lightnings(tmp_path: Any, fn: str) -> None:
    theirs = _profiled_names("lightning", fn, tmp_path)
    mine = _profiled_names("torchbolt", fn, tmp_path)
    assert sorted(mine) == sorted(theirs)
    assert mine == theirs  # and the number of calls of each
    # the strategy's lifecycle hooks are there, under the strategy's class name
    start = {"fit": "on_train_start", "validate": "on_validation_start"}.get(fn, f"on_{fn}_start")
    assert mine[f"[Strategy]SingleDeviceStrategy.{start}"] == 1


@pytest.mark.lightning
@pytest.mark.parametrize("fn", ["fit", "test"])
def test_action_names_under_ddp_equal_lightnings(tmp_path: Any, fn: str) -> None:
    """One process under `strategy="ddp"`: every strategy action is named after DDPStrategy."""
    kwargs = {"strategy": "ddp", "accelerator": "cpu", "devices": 1}
    theirs = _profiled_names("lightning", fn, tmp_path, **kwargs)
    mine = _profiled_names("torchbolt", fn, tmp_path, **kwargs)
    assert mine == theirs
    step = "training_step" if fn == "fit" else "test_step"
    assert mine[f"[Strategy]DDPStrategy.{step}"] == (4 if fn == "fit" else 2)
    assert not any("SingleDeviceStrategy" in name for name in mine)


def test_strategy_hooks_run_without_a_profiler_only_when_overridden(tmp_path: Any) -> None:
    """Without a profiler a strategy that overrides a lifecycle hook is still called (after the callbacks
    and the module, as Lightning does); one that does not adds nothing to the dispatch table."""
    from torchbolt.strategies import SingleDeviceStrategy

    order: list[str] = []

    class Watching(SingleDeviceStrategy):
        def on_train_start(self) -> None:
            order.append("strategy.on_train_start")

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            order.append(f"strategy.on_train_batch_start:{batch_idx}")

    class Net(_module_cls(tb.LightningModule)):  # type: ignore[misc]
        def on_train_start(self) -> None:
            order.append("module.on_train_start")

    class Cb(tb.Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            order.append("callback.on_train_start")

    trainer = tb.Trainer(max_epochs=1, strategy=Watching(), logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[Cb()], default_root_dir=str(tmp_path))
    trainer.fit(Net())
    assert order == ["callback.on_train_start", "module.on_train_start", "strategy.on_train_start",
                     "strategy.on_train_batch_start:0", "strategy.on_train_batch_start:1"]
    plain = tb.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False, default_root_dir=str(tmp_path / "plain"))
    plain.fit(_module_cls(tb.LightningModule)())
    assert not plain._hooks.has("on_train_start")


def test_per_step_hooks_log_under_a_profiler_and_defaults_skip_the_context(tmp_path: Any) -> None:
    """With a profiler the loops call per-step hook points through `callers`: where a module or callback
    overrides the hook, `self.log` inside it still records under that hook's name; hook points only base
    class defaults implement go straight to their timed runner (no context to set), and still count."""
    seen: list[str] = []

    class Net(_module_cls(tb.LightningModule)):  # type: ignore[misc]
        def on_before_backward(self, loss: torch.Tensor) -> None:
            self.log("before_backward", loss.detach())

    class Cb(tb.Callback):
        def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
            pl_module.log("batch_end", torch.tensor(1.0))
            seen.append(trainer._ctx.fx)

    prof = tbp.SimpleProfiler()
    trainer = tb.Trainer(max_epochs=1, profiler=prof, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[Cb()], default_root_dir=str(tmp_path))
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.fit(Net())
    assert {"before_backward", "batch_end"} <= set(trainer.callback_metrics)
    assert seen == ["on_train_batch_end", "on_train_batch_end"]
    hooks = trainer._hooks
    assert hooks.callers["on_after_backward"] is hooks._runners["on_after_backward"]  # defaults only
    assert hooks.callers["on_before_backward"] is not hooks._runners["on_before_backward"]
    assert len(prof.recorded_durations["[LightningModule]Net.on_after_backward"]) == 2
    assert len(prof.recorded_durations["[LightningModule]Net.on_before_backward"]) == 2


@pytest.mark.lightning
@pytest.mark.parametrize("bar", ["default", "plain"])
def test_action_names_with_the_default_callbacks_and_checkpoints_equal_lightnings(tmp_path: Any, bar: str) -> None:
    """The default Trainer: progress bar, model summary, ModelCheckpoint (its state key in the names) and
    the checkpoint hooks and `save_checkpoint` of every epoch; with the default (rich, when installed)
    bar and summary, and with the plain ones."""
    names = {}
    for engine in ("torchbolt", "lightning"):
        pl = tb if engine == "torchbolt" else pytest.importorskip("lightning.pytorch")
        prof = tbp.SimpleProfiler() if engine == "torchbolt" else pl.profilers.SimpleProfiler()
        callbacks = [pl.callbacks.TQDMProgressBar(), pl.callbacks.ModelSummary()] if bar == "plain" else None
        trainer = pl.Trainer(max_epochs=2, profiler=prof, logger=False, default_root_dir=str(tmp_path / engine),
                             callbacks=callbacks)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            trainer.fit(_module_cls(pl.LightningModule)())
        names[engine] = {k: len(v) for k, v in prof.recorded_durations.items()}
    assert names["torchbolt"] == names["lightning"]
    assert names["torchbolt"]["save_checkpoint"] == 2


def test_fit_with_profiler_prints_report_and_trainer_profile_context(tmp_path: Any, capsys: Any) -> None:
    class Custom(_module_cls(tb.LightningModule)):  # type: ignore[misc]
        def on_train_epoch_end(self) -> None:
            with self.trainer.profiler.profile("my_action"):
                pass

    trainer = tb.Trainer(max_epochs=1, profiler="simple", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))
    trainer.fit(Custom())
    out = capsys.readouterr().out
    assert "FIT Profiler Report" in out and "my_action" in out and "run_training_epoch" in out


def test_advanced_profiler_in_a_fit_writes_to_log_dir(tmp_path: Any) -> None:
    trainer = tb.Trainer(max_epochs=1, profiler=tbp.AdvancedProfiler(filename="adv"), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path))
    trainer.fit(_module_cls(tb.LightningModule)())
    text = (tmp_path / "fit-adv.txt").read_text()
    assert "Profile stats for: run_training_epoch" in text


def test_pytorch_profiler_exports_chrome_trace_and_table(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TORCHBOLT_PROFILER_SUMMARY", str(tmp_path / "summary.json"))
    prof = tbp.PyTorchProfiler(dirpath=tmp_path, filename="torch", record_shapes=True, profile_memory=True)
    trainer = tb.Trainer(max_epochs=1, profiler=prof, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
                         limit_val_batches=0)
    trainer.fit(_module_cls(tb.LightningModule)())
    text = (tmp_path / "fit-torch.txt").read_text()
    assert "aten::" in text and "[pl][profile]" in text
    traces = [p for p in os.listdir(tmp_path) if p.endswith(".pt.trace.json")]
    assert traces, os.listdir(tmp_path)
    trace = json.loads((tmp_path / traces[0]).read_text())
    assert any("[pl][profile]" in str(ev.get("name")) for ev in trace["traceEvents"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    names = {a["name"] for a in summary["actions"]}
    assert summary["profiler"] == "PyTorchProfiler" and "run_training_batch" in names
    assert set(summary["traces"]) == {str(tmp_path / t) for t in traces}


def test_pytorch_profiler_validates_arguments() -> None:
    with pytest.raises(MisconfigurationException, match="sort_by_key"):
        tbp.PyTorchProfiler(sort_by_key="speed")
    with pytest.raises(KeyError, match="row_limit"):
        tbp.PyTorchProfiler(table_kwargs={"row_limit": 3})
    with pytest.raises(MisconfigurationException, match="Schedule should be a callable"):
        tbp.PyTorchProfiler(schedule=3)
    if not torch.cuda.is_available():
        with pytest.raises(MisconfigurationException, match="emit_nvtx"):
            tbp.PyTorchProfiler(emit_nvtx=True)


def _event_sequence(engine: str, tmp_path: Any, general_path: bool = False,
                    monkeypatch: pytest.MonkeyPatch | None = None) -> list[tuple[str, str]]:
    """Every start/stop a fit makes, in order, recorded by a profiler subclass of `engine`'s base class."""
    pl = pytest.importorskip("lightning.pytorch") if engine == "lightning" else tb
    events: list[tuple[str, str]] = []

    class Recording(pl.profilers.Profiler):  # type: ignore[misc, name-defined]
        def start(self, action_name: str) -> None:
            events.append(("start", action_name))

        def stop(self, action_name: str) -> None:
            events.append(("stop", action_name))

    if general_path:
        assert monkeypatch is not None
        from torchbolt.loops.optimization import Optimization

        monkeypatch.setattr(Optimization, "_default_step_chain", lambda self: False)
    trainer = pl.Trainer(max_epochs=1, limit_val_batches=0, profiler=Recording(), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path / engine))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        trainer.fit(_module_cls(pl.LightningModule)())
    first = events.index(("start", "run_training_batch"))
    last = len(events) - events[::-1].index(("stop", "run_training_batch"))
    return events[first - 12:last + 4]  # the batches, with the fetch and transfer before the first


def test_timed_plain_step_times_what_the_general_path_times(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a profiler and the default step methods, the loop skips the call chain between the timed
    actions; the start/stop sequence (actions, order and nesting) is the general path's, event for event."""
    plain = _event_sequence("torchbolt", tmp_path / "plain")
    general = _event_sequence("torchbolt", tmp_path / "general", general_path=True, monkeypatch=monkeypatch)
    assert plain == general
    assert plain.count(("start", "[LightningModule]Net.optimizer_zero_grad")) == 2


@pytest.mark.lightning
def test_timed_step_sequence_equals_lightnings(tmp_path: Any) -> None:
    """The same sequence against Lightning's: what each training batch starts and stops, in order."""
    theirs = _event_sequence("lightning", tmp_path)
    mine = _event_sequence("torchbolt", tmp_path)
    batch = ("start", "run_training_batch")
    assert mine[mine.index(batch):] == theirs[theirs.index(batch):]
