"""Unit tests of the built-in callbacks: progress bar, ModelSummary, Timer, LambdaCallback.

These drive the callbacks' hooks directly with a small stand-in for the trainer state they read;
tests/runtime/test_builtin_callbacks_fit.py runs them inside real `Trainer.fit` calls.
"""

from __future__ import annotations

import inspect
import io
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torchbolt.callbacks.callback import Callback
from torchbolt.callbacks.lambda_function import LAMBDA_HOOKS, LambdaCallback
from torchbolt.callbacks.model_summary import ModelSummary, render, summarize
from torchbolt.callbacks.progress import ProgressBar, TQDMProgressBar
from torchbolt.callbacks.timer import Timer, parse_duration
from torchbolt.catalog import CALLBACK_HOOKS, CALLBACKS_BY_NAME


# --------------------------------------------------------------------------------------------------
# Arguments match the catalog
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [TQDMProgressBar, ModelSummary, Timer])
def test_constructor_matches_catalog(cls: type) -> None:
    spec = CALLBACKS_BY_NAME[cls.__name__]
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert [p.name for p in params] == [a.name for a in spec.args]
    for p, arg in zip(params, spec.args, strict=True):
        assert p.default == arg.default, p.name


def test_lambda_callback_accepts_every_catalog_hook() -> None:
    expected = {h.name for h in CALLBACK_HOOKS} - {"state_dict", "load_state_dict"}
    assert set(LAMBDA_HOOKS) == expected


# --------------------------------------------------------------------------------------------------
# Timer
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("00:01:30:05", timedelta(hours=1, minutes=30, seconds=5)),
    ("2:00:00:00", timedelta(days=2)),
    ({"minutes": 3}, timedelta(minutes=3)),
    (timedelta(seconds=7), timedelta(seconds=7)),
    (None, None),
])
def test_parse_duration(value: object, expected: timedelta | None) -> None:
    assert parse_duration(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "error", "fragment"), [
    ("1:30", ValueError, "DD:HH:MM:SS"),
    ("aa:bb:cc:dd", ValueError, "DD:HH:MM:SS"),
    ({"fortnights": 1}, ValueError, "timedelta arguments"),
    (12, TypeError, "got int 12"),
])
def test_parse_duration_errors(value: object, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        parse_duration(value, "max_time")  # type: ignore[arg-type]


def test_timer_rejects_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval='batch'.*'step', 'epoch'"):
        Timer(interval="batch")


def test_timer_stops_training_when_budget_spent(capsys: pytest.CaptureFixture[str]) -> None:
    timer = Timer(duration={"seconds": 0}, interval="step")
    trainer = SimpleNamespace(should_stop=False, sanity_checking=False)
    timer.on_train_start(trainer, None)  # type: ignore[arg-type]
    timer.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    assert trainer.should_stop is True
    assert "Time limit reached" in capsys.readouterr().out


def test_timer_epoch_interval_ignores_steps() -> None:
    timer = Timer(duration={"seconds": 0}, interval="epoch", verbose=False)
    trainer = SimpleNamespace(should_stop=False, sanity_checking=False)
    timer.on_train_start(trainer, None)  # type: ignore[arg-type]
    timer.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    assert trainer.should_stop is False
    timer.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    assert trainer.should_stop is True


def test_timer_measures_stages_and_restores_elapsed_time() -> None:
    timer = Timer(duration={"hours": 1})
    trainer = SimpleNamespace(should_stop=False, sanity_checking=False)
    assert timer.start_time("train") is None and timer.time_elapsed("train") == 0.0
    timer.on_train_start(trainer, None)  # type: ignore[arg-type]
    time.sleep(0.02)
    timer.on_validation_start(trainer, None)  # type: ignore[arg-type]
    timer.on_validation_end(trainer, None)  # type: ignore[arg-type]
    timer.on_train_end(trainer, None)  # type: ignore[arg-type]
    elapsed = timer.time_elapsed("train")
    assert elapsed >= 0.02
    assert timer.time_elapsed("validate") < elapsed
    assert timer.time_remaining("train") == pytest.approx(3600 - elapsed)
    state = timer.state_dict()
    assert set(state["time_elapsed"]) == {"train", "validate", "test", "predict", "sanity_check"}

    resumed = Timer(duration={"seconds": 1}, verbose=False)
    resumed.load_state_dict({"time_elapsed": {"train": 5.0}})
    assert resumed.time_elapsed("train") == 5.0
    trainer2 = SimpleNamespace(should_stop=False)
    resumed.on_fit_start(trainer2, None)  # type: ignore[arg-type]
    assert trainer2.should_stop is True  # the restored budget was already spent
    with pytest.raises(ValueError, match="Unknown stage 'training'"):
        timer.time_elapsed("training")


# --------------------------------------------------------------------------------------------------
# LambdaCallback
# --------------------------------------------------------------------------------------------------
def test_lambda_callback_calls_the_functions() -> None:
    seen: list[tuple[str, int]] = []
    cb = LambdaCallback(on_train_batch_end=lambda trainer, module, out, batch, idx: seen.append(("end", idx)),
                        setup=lambda trainer, module, stage: seen.append((stage, 0)))
    assert isinstance(cb, Callback)
    cb.on_train_batch_end(None, None, None, None, 3)  # type: ignore[arg-type]
    cb.setup(None, None, "fit")  # type: ignore[arg-type]
    cb.on_train_start(None, None)  # type: ignore[arg-type]  # not given: still the no-op
    assert seen == [("end", 3), ("fit", 0)]
    assert set(cb.hooks) == {"on_train_batch_end", "setup"}


def test_lambda_callback_rejects_unknown_hooks() -> None:
    with pytest.raises(TypeError, match="unknown hook 'on_train_epoch_ends'.*Did you mean 'on_train_epoch_end'"):
        LambdaCallback(on_train_epoch_ends=print)
    with pytest.raises(TypeError, match="must be a function"):
        LambdaCallback(on_fit_start=3)
    assert LambdaCallback(on_fit_start=None).hooks == {}  # None: no function, as in Lightning


def test_progress_bar_with_unknown_length() -> None:
    bar, stream = _bar(tty=False)
    trainer = _fake_trainer(num_training_batches=float("inf"), max_epochs=-1)
    bar.on_train_start(trainer, None)  # type: ignore[arg-type]
    bar.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    for i in range(3):
        bar.on_train_batch_end(trainer, None, None, None, i)  # type: ignore[arg-type]
    bar.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    line = stream.getvalue().strip()
    assert line.startswith("Epoch 1: 3/? [") and "<" not in line.split("]")[0]


# --------------------------------------------------------------------------------------------------
# ModelSummary
# --------------------------------------------------------------------------------------------------
class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        self.head = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        for p in self.head.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.head(self.encoder(x)))


def test_summary_counts_and_depth() -> None:
    net = _Net()
    summary = summarize(net, max_depth=1)
    assert [r.name for r in summary.rows] == ["encoder", "head", "bn"]
    assert [r.params for r in summary.rows] == [4 * 8 + 8 + 8 * 3 + 3, 3 * 2 + 2, 2 + 2]
    assert summary.trainable == 67 + 4 and summary.non_trainable == 8 and summary.total == 79
    assert summary.size_mb == pytest.approx(79 * 4 / 1e6)
    deep = summarize(net, max_depth=-1)
    assert [r.name for r in deep.rows] == ["encoder", "encoder.0", "encoder.1", "encoder.2", "head", "bn"]
    net.encoder.eval()
    modes = {r.name: r.mode for r in summarize(net, 2).rows}
    assert modes["encoder"] == "eval" and modes["head"] == "train"


def test_summary_shared_parameters_count_once() -> None:
    shared = nn.Linear(3, 3)
    net = nn.Sequential(shared, shared)
    assert summarize(net).total == 12


def test_summary_sizes_from_example_input_array() -> None:
    net = _Net()
    net.example_input_array = torch.zeros(5, 4)  # type: ignore[assignment]
    summary = summarize(net)
    assert summary.has_sizes
    rows = {r.name: r for r in summary.rows}
    assert rows["encoder"].in_size == "[5, 4]" and rows["encoder"].out_size == "[5, 3]"
    assert net.training  # tracing restores the mode
    text = render(summary)
    assert "In sizes" in text and "[5, 2]" in text


def test_summary_render_and_callback(capsys: pytest.CaptureFixture[str]) -> None:
    net = _Net()
    text = render(summarize(net))
    assert text.splitlines()[0].split("|")[1].strip() == "Name"
    assert "71        Trainable params" in text
    assert "8         Non-trainable params" in text
    assert "Total estimated model params size (MB)" in text
    cb = ModelSummary(max_depth=1)
    cb.on_fit_start(SimpleNamespace(is_global_zero=True), net)  # type: ignore[arg-type]
    assert "encoder" in capsys.readouterr().out and cb.last_summary is not None
    ModelSummary(max_depth=0).on_fit_start(SimpleNamespace(), net)  # type: ignore[arg-type]
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="max_depth=-2"):
        ModelSummary(max_depth=-2)


# --------------------------------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------------------------------
def _fake_trainer(**kw: object) -> SimpleNamespace:
    base = dict(current_epoch=0, max_epochs=2, num_training_batches=4, num_val_batches=[2],
                num_sanity_val_batches=[2], num_test_batches=[3], num_predict_batches=[3],
                sanity_checking=False, progress_bar_metrics={"val_acc": 0.75}, logger=None)
    base.update(kw)
    return SimpleNamespace(**base)


def _bar(tty: bool) -> tuple[TQDMProgressBar, io.StringIO]:
    bar = TQDMProgressBar()
    stream = io.StringIO()
    bar._stream, bar._tty = stream, tty
    return bar, stream


def test_plain_mode_prints_one_line_per_epoch() -> None:
    bar, stream = _bar(tty=False)
    trainer = _fake_trainer(logger=SimpleNamespace(version=3))
    assert isinstance(bar, ProgressBar)
    bar.on_train_start(trainer, None)  # type: ignore[arg-type]
    for epoch in range(2):
        trainer.current_epoch = epoch
        bar.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
        for i in range(4):
            bar.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5 - epoch / 10)}, None, i)  # type: ignore[arg-type]
        bar.on_validation_start(trainer, None)  # type: ignore[arg-type]
        bar.on_validation_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
        bar.on_validation_end(trainer, None)  # type: ignore[arg-type]
        bar.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    bar.on_train_end(trainer, None)  # type: ignore[arg-type]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/2: 4/4 [")
    assert "loss=0.500" in lines[0] and "v_num=3" in lines[0] and "val_acc=0.750" in lines[0]
    assert lines[1].startswith("Epoch 2/2: 4/4 [") and "loss=0.400" in lines[1]
    assert "\r" not in stream.getvalue()


def test_tty_mode_redraws_in_place_and_is_throttled(monkeypatch: pytest.MonkeyPatch) -> None:
    bar, stream = _bar(tty=True)
    trainer = _fake_trainer(num_training_batches=1000, max_epochs=1)
    clock = [100.0]
    monkeypatch.setattr("torchbolt.callbacks.progress.time.monotonic", lambda: clock[0])
    bar.on_train_start(trainer, None)  # type: ignore[arg-type]
    bar.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    for i in range(1000):
        clock[0] += 0.001  # 1 ms per step: at most one redraw per 0.1 s
        bar.on_train_batch_end(trainer, None, torch.tensor(1.0), None, i)  # type: ignore[arg-type]
    redraws = stream.getvalue().count("\r")
    assert 5 <= redraws <= 11
    bar.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    bar.on_train_end(trainer, None)  # type: ignore[arg-type]
    out = stream.getvalue()
    assert out.endswith("\n")
    last = out.rstrip("\n").split("\r")[-1]
    assert "1000/1000" in last and "100%" in last and "it/s" in last and "loss=1" in last


def test_standalone_evaluation_prints_a_line() -> None:
    bar, stream = _bar(tty=False)
    trainer = _fake_trainer(progress_bar_metrics={"test_acc": 0.5})
    bar.on_test_start(trainer, None)  # type: ignore[arg-type]
    for i in range(3):
        bar.on_test_batch_end(trainer, None, None, None, i)  # type: ignore[arg-type]
    bar.on_test_end(trainer, None)  # type: ignore[arg-type]
    assert stream.getvalue().startswith("Testing: 3/3 [") and "test_acc=0.500" in stream.getvalue()


def test_refresh_rate_zero_disables_and_arguments_are_checked() -> None:
    bar, stream = _bar(tty=False)
    bar = TQDMProgressBar(refresh_rate=0)
    bar._stream = stream
    trainer = _fake_trainer()
    bar.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    bar.on_train_batch_end(trainer, None, None, None, 0)  # type: ignore[arg-type]
    bar.on_train_epoch_end(trainer, None)  # type: ignore[arg-type]
    assert bar.is_disabled and stream.getvalue() == ""
    with pytest.raises(ValueError, match="refresh_rate=-1"):
        TQDMProgressBar(refresh_rate=-1)


def test_eval_total_is_read_again_when_unknown_at_start() -> None:
    bar, stream = _bar(tty=True)
    trainer = _fake_trainer(num_sanity_val_batches=[], sanity_checking=True)
    bar.on_sanity_check_start(trainer, None)  # type: ignore[arg-type]
    bar.on_validation_start(trainer, None)  # type: ignore[arg-type]
    trainer.num_sanity_val_batches = [2]  # counted by the loop after the start hooks
    for i in range(2):
        bar.on_validation_batch_end(trainer, None, None, None, i)  # type: ignore[arg-type]
    assert bar._total == 2
    bar.on_sanity_check_end(trainer, None)  # type: ignore[arg-type]
    assert not bar._line_open
