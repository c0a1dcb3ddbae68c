"""self.log / self.log_dict: per-hook defaults, forked names, reductions, destinations, and errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchbolt as tb
from _tb_helpers import QUIET, Tiny, loader, trainer
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.utilities.exceptions import MisconfigurationException


class RecordingLogger:
    """A logger that keeps every call (duck-typed like torchbolt.loggers.Logger)."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.hparams: list[Any] = []
        self.finalized: list[str] = []
        self.saved = 0

    name = "rec"
    version = 0
    log_dir = None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self.hparams.append(dict(params))

    def save(self) -> None:
        self.saved += 1

    def finalize(self, status: str) -> None:
        self.finalized.append(status)


class Logs(Tiny):
    def __init__(self, how: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.how = how or {}

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("loss", loss, **self.how)
        return loss


def _values(batch_size: int = 4, n: int = 12) -> DataLoader[Any]:
    # batch i holds the value i in every row: step values 0, 1, 2 (+ a shorter last batch)
    x = torch.arange(n, dtype=torch.float32).div(batch_size).floor().unsqueeze(1).repeat(1, 4)
    return DataLoader(TensorDataset(x, x[:, :1]), batch_size=batch_size)


class LogsBatchValue(Tiny):
    def __init__(self, **how: Any) -> None:
        super().__init__()
        self.how = how

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, _ = batch
        self.log("v", x[0, 0], **self.how)
        return self(x).sum() * 0.0

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, _ = batch
        self.log("vv", x[0, 0], **self.how)


def test_training_step_defaults_to_step_level() -> None:
    t = trainer()
    t.fit(LogsBatchValue(), _values())
    assert set(t.callback_metrics) == {"v"}
    assert t.callback_metrics["v"].item() == 2.0  # last step's value
    assert set(t.logged_metrics) == {"v"}


def test_on_step_and_on_epoch_fork_the_name() -> None:
    t = trainer()
    t.fit(LogsBatchValue(on_step=True, on_epoch=True), _values())
    assert set(t.callback_metrics) == {"v", "v_step", "v_epoch"}
    assert t.callback_metrics["v_step"].item() == 2.0
    assert t.callback_metrics["v_epoch"].item() == pytest.approx(1.0)  # mean of 0, 1, 2 (4 rows each)
    assert t.callback_metrics["v"].item() == pytest.approx(1.0)
    assert set(t.logged_metrics) == {"v_step", "v_epoch"}


def test_epoch_mean_is_weighted_by_batch_size() -> None:
    t = trainer()
    # 10 rows in batches of 4: values 0 (4 rows), 1 (4 rows), 2 (2 rows) -> (0*4 + 1*4 + 2*2) / 10
    t.fit(LogsBatchValue(on_step=False, on_epoch=True), _values(4, 10))
    assert t.callback_metrics["v"].item() == pytest.approx(0.8)
    t = trainer()
    t.fit(LogsBatchValue(on_step=False, on_epoch=True, batch_size=1), _values(4, 10))
    assert t.callback_metrics["v"].item() == pytest.approx(1.0)


@pytest.mark.parametrize(("reduce_fx", "expected"), [("sum", 3.0), ("max", 2.0), ("min", 0.0), ("mean", 1.0),
                                                      (torch.max, 2.0), ("avg", 1.0)])
def test_reductions(reduce_fx: Any, expected: float) -> None:
    t = trainer()
    t.fit(LogsBatchValue(on_step=False, on_epoch=True, reduce_fx=reduce_fx), _values())
    assert t.callback_metrics["v"].item() == pytest.approx(expected)


def test_validation_defaults_to_epoch_level_and_prog_bar_and_logger_flags() -> None:
    t = trainer()
    t.fit(LogsBatchValue(prog_bar=True, logger=False), _values(), _values())
    assert t.callback_metrics["vv"].item() == pytest.approx(1.0)
    assert "vv" in t.progress_bar_metrics and isinstance(t.progress_bar_metrics["vv"], float)
    assert "vv" not in t.logged_metrics and "v" not in t.logged_metrics


def test_several_eval_dataloaders_get_a_suffix() -> None:
    class TwoLoaders(LogsBatchValue):
        def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            x, _ = batch
            self.log("vv", x[0, 0] + dataloader_idx)
            self.log("plain", x[0, 0], add_dataloader_idx=False) if dataloader_idx == 0 else None

    t = trainer()
    t.fit(TwoLoaders(), _values(), [_values(), _values()])
    assert t.callback_metrics["vv/dataloader_idx_0"].item() == pytest.approx(1.0)
    assert t.callback_metrics["vv/dataloader_idx_1"].item() == pytest.approx(2.0)
    assert "plain" in t.callback_metrics
    results = t.validate(TwoLoaders(), [_values(), _values()], verbose=False)
    assert len(results) == 2 and results[1]["vv/dataloader_idx_1"] == pytest.approx(2.0)


def test_epoch_hooks_and_callbacks_can_log() -> None:
    class Cb(tb.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            pl_module.log("from_cb", 3.0)

    class EpochLog(Tiny):
        def on_train_epoch_start(self) -> None:
            self.log("start", float(self.current_epoch))

        def on_validation_epoch_end(self) -> None:
            self.log_dict({"a": 1.0, "b": torch.tensor(2.0)}, prog_bar=True)

    t = trainer(max_epochs=2, callbacks=[Cb()])
    t.fit(EpochLog(), loader(16, 8), loader(8, 8))
    assert t.callback_metrics["from_cb"].item() == 3.0
    assert t.callback_metrics["start"].item() == 1.0
    assert t.progress_bar_metrics["a"] == 1.0 and t.callback_metrics["b"].item() == 2.0


@pytest.mark.parametrize("hook", ["setup", "configure_optimizers", "on_fit_start", "on_train_end",
                                  "teardown", "on_validation_model_eval"])
def test_logging_where_not_allowed_names_the_hook(hook: str) -> None:
    class Bad(Tiny):
        pass

    base = getattr(Tiny, hook, None) or getattr(tb.LightningModule, hook)

    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.log("x", 1.0)
        return base(self, *args, **kwargs)

    setattr(Bad, hook, patched)
    with pytest.raises(MisconfigurationException, match=f"inside `{hook}`"):
        trainer().fit(Bad(), loader(8, 8), loader(8, 8))


def test_disallowed_level_lists_allowed_values() -> None:
    class Bad(Tiny):
        def on_train_epoch_end(self) -> None:
            self.log("x", 1.0, on_step=True)

    with pytest.raises(MisconfigurationException, match=r"on_step=True\)` inside `on_train_epoch_end`, must be one of"):
        trainer().fit(Bad(), loader(8, 8))


@pytest.mark.parametrize(("value", "error", "needle"), [
    (torch.ones(3), ValueError, "3 elements"),
    ({"a": 1.0}, ValueError, "log_dict"),
    ("text", ValueError, "`str`"),
    (None, ValueError, "`NoneType`"),
])
def test_non_scalar_values_are_refused(value: Any, error: type[Exception], needle: str) -> None:
    class Bad(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.log("x", value)
            return super().training_step(batch, batch_idx)

    with pytest.raises(error, match=needle):
        trainer().fit(Bad(), loader(8, 8))


@pytest.mark.parametrize(("kwargs", "needle"), [
    (dict(reduce_fx="median"), "reduce_fx"),
    (dict(on_step=False, on_epoch=False), "records nothing"),
])
def test_bad_log_options(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(MisconfigurationException, match=needle):
        trainer().fit(Logs(kwargs), loader(8, 8))


def test_same_name_with_different_arguments_in_one_hook() -> None:
    class Twice(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.log("x", 1.0, prog_bar=batch_idx == 1)
            return super().training_step(batch, batch_idx)

    with pytest.raises(MisconfigurationException, match="twice in `training_step`"):
        trainer().fit(Twice(), loader(16, 8))


def test_dataloader_idx_in_the_name_is_refused() -> None:
    with pytest.raises(MisconfigurationException, match="dataloader_idx"):
        class Bad(Tiny):
            def training_step(self, batch: Any, batch_idx: int) -> Any:
                self.log("x/dataloader_idx_0", 1.0)
                return super().training_step(batch, batch_idx)

        trainer().fit(Bad(), loader(8, 8))


def test_log_without_trainer_warns_and_in_predict_raises() -> None:
    model = Tiny()
    with pytest.warns(UserWarning, match="not attached to a Trainer"):
        model.training_step((torch.zeros(2, 4), torch.zeros(2, 1)), 0)

    class PredictLogs(Tiny):
        def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
            self.log("x", 1.0)
            return self(batch[0])

    with pytest.raises(MisconfigurationException, match="predict"):
        trainer().predict(PredictLogs(), loader(8, 8))


def test_integer_tensor_is_converted_with_a_warning() -> None:
    class IntLog(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.log("count", torch.tensor(batch_idx), on_epoch=True, reduce_fx="sum")
            return super().training_step(batch, batch_idx)

    t = trainer()
    with pytest.warns(UserWarning, match="integer tensor"):
        t.fit(IntLog(), loader(24, 8))
    assert t.callback_metrics["count_epoch"].dtype == torch.float32
    assert t.callback_metrics["count_epoch"].item() == 3.0


def test_loggers_receive_step_metrics_every_n_steps_and_epoch_metrics() -> None:
    rec = RecordingLogger()
    t = tb.Trainer(max_epochs=2, logger=rec, log_every_n_steps=2, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    model = LogsBatchValue(on_step=True, on_epoch=True)
    t.fit(model, _values(4, 16), _values(4, 8))
    steps = [(s, sorted(m)) for s, m in rec.metrics]
    # step metrics at steps 1, 3 (every 2nd step counting from 0), validation + epoch metrics per epoch
    assert (1, ["epoch", "v_step"]) in steps and (3, ["epoch", "v_step"]) in steps
    epoch_entries = [(s, m) for s, m in rec.metrics if "v_epoch" in m]
    assert [s for s, _ in epoch_entries] == [3, 7]
    assert epoch_entries[0][1]["epoch"] == 0 and epoch_entries[1][1]["epoch"] == 1
    val_entries = [m for _, m in rec.metrics if "vv_epoch" in m]
    assert len(val_entries) == 2
    assert len([m for _, m in rec.metrics if "vv_step" in m]) == 4  # eval step metrics, every batch
    assert rec.finalized == ["success"]


def test_logger_true_without_loggers_warns_once() -> None:
    class Explicit(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.log("x", 1.0, logger=True)
            return super().training_step(batch, batch_idx)

    with pytest.warns(UserWarning, match="has no logger"):
        trainer().fit(Explicit(), loader(16, 8))


def test_barebones_makes_log_a_noop() -> None:
    t = tb.Trainer(barebones=True, max_epochs=1)
    with pytest.warns(UserWarning, match="barebones"):
        t.fit(Tiny(), loader(8, 8))
    assert t.callback_metrics == {}


def test_hparams_are_sent_to_loggers() -> None:
    class WithHparams(Tiny):
        def __init__(self, lr: float = 0.1, width: int = 3) -> None:
            super().__init__(lr)
            self.save_hyperparameters()

    rec = RecordingLogger()
    t = tb.Trainer(max_epochs=1, logger=rec, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False)
    t.fit(WithHparams(width=5), loader(8, 8))
    assert rec.hparams == [{"lr": 0.1, "width": 5}]
    rec2 = RecordingLogger()
    t = tb.Trainer(max_epochs=1, logger=rec2, enable_autolog_hparams=False, **{
        k: v for k, v in QUIET.items() if k != "logger"})
    t.fit(WithHparams(), loader(8, 8))
    assert rec2.hparams == []
