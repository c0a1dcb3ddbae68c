"""Loop behaviour of fit/validate/test/predict: intervals, limits, debugging flags, control returns, state."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
from collections import namedtuple
from typing import Any

import pytest
import torch
import torchbolt as tb
from _tb_helpers import Tiny, data, loader, trainer
from torch.utils.data import DataLoader
from torchbolt.utilities.exceptions import MisconfigurationException


class Counting(Tiny):
    def __init__(self) -> None:
        super().__init__()
        self.val_runs: list[tuple[int, int]] = []  # (epoch, global_step) at each validation start
        self.train_batches = 0
        self.val_batches = 0

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.train_batches += 1
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.val_batches += 1
        super().validation_step(batch, batch_idx)

    def on_validation_start(self) -> None:
        if not self.trainer.sanity_checking:
            self.val_runs.append((self.current_epoch, self.global_step))


@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(max_epochs=2), [(0, 4), (1, 8)]),
    (dict(max_epochs=1, val_check_interval=0.5), [(0, 2), (0, 4)]),
    (dict(max_epochs=1, val_check_interval=0.25), [(0, 1), (0, 2), (0, 3), (0, 4)]),
    (dict(max_epochs=1, val_check_interval=3), [(0, 3)]),
    (dict(max_epochs=4, check_val_every_n_epoch=2), [(1, 8), (3, 16)]),
    (dict(max_epochs=3, check_val_every_n_epoch=None, val_check_interval=5), [(1, 5), (2, 10)]),
    (dict(max_epochs=2, limit_val_batches=0), []),
])
def test_validation_schedule(kwargs: dict[str, Any], expected: list[tuple[int, int]]) -> None:
    model = Counting()
    trainer(**kwargs).fit(model, loader(32, 8), loader(16, 8))
    assert model.val_runs == expected


def test_val_check_interval_larger_than_the_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="must be less than or equal to the number of the training batches"):
        trainer(val_check_interval=10).fit(Tiny(), loader(32, 8), loader(8, 8))


@pytest.mark.parametrize(("kwargs", "train", "val"), [
    (dict(limit_train_batches=2, limit_val_batches=1), 2, 1),
    (dict(limit_train_batches=0.5, limit_val_batches=0.5), 2, 1),
    (dict(limit_train_batches=1.0), 4, 2),
])
def test_limits(kwargs: dict[str, Any], train: int, val: int) -> None:
    model = Counting()
    t = trainer(**kwargs)
    t.fit(model, loader(32, 8), loader(16, 8))
    assert (model.train_batches, model.val_batches) == (train, val)
    assert t.num_training_batches == train and t.num_val_batches == [val]


def test_fractional_limit_below_one_batch_is_refused() -> None:
    with pytest.raises(MisconfigurationException, match="Try at least `limit_train_batches=0.25`"):
        trainer(limit_train_batches=0.1).fit(Tiny(), loader(32, 8))


def test_overfit_batches_turns_off_shuffling_and_limits_both_loaders() -> None:
    seen: list[torch.Tensor] = []

    class Record(Counting):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            seen.append(batch[0][0].clone())
            return super().training_step(batch, batch_idx)

    model = Record()
    with pytest.warns(UserWarning, match="shuffling"):
        trainer(max_epochs=2, overfit_batches=2).fit(model, loader(32, 8, shuffle=True), loader(32, 8))
    assert model.train_batches == 4 and model.val_batches == 4
    assert torch.equal(seen[0], seen[2]) and torch.equal(seen[1], seen[3])  # same two batches every epoch


@pytest.mark.parametrize(("fast_dev_run", "batches"), [(True, 1), (3, 3)])
def test_fast_dev_run(fast_dev_run: Any, batches: int, capsys: pytest.CaptureFixture[str]) -> None:
    model = Counting()
    t = tb.Trainer(fast_dev_run=fast_dev_run, enable_progress_bar=False, enable_model_summary=False)
    t.fit(model, loader(64, 8), loader(64, 8))
    assert (model.train_batches, model.val_batches) == (batches, batches)
    assert t.global_step == batches and t.current_epoch == 1
    assert "fast_dev_run" in capsys.readouterr().out
    assert t.checkpoint_callback is not None and t.checkpoint_callback.best_model_path == ""


def test_training_step_returning_none_skips_the_update() -> None:
    class SkipOdd(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            self.before = self.layer.weight.detach().clone()
            if batch_idx % 2:
                return None
            return super().training_step(batch, batch_idx)

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            changed = not torch.equal(self.before, self.layer.weight)
            self.record.append((batch_idx, changed, outputs))

    model = SkipOdd()
    model.record = []
    with pytest.warns(UserWarning, match="returned `None`"):
        trainer().fit(model, loader(32, 8))
    assert [(i, c) for i, c, _ in model.record] == [(0, True), (1, False), (2, True), (3, False)]
    assert model.record[1][2] == {} and "loss" in model.record[0][2]


def test_on_train_batch_start_minus_one_ends_the_epoch() -> None:
    class Stop(Counting):
        def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
            return -1 if batch_idx == 2 else None

    model = Stop()
    t = trainer(max_epochs=2)
    t.fit(model, loader(32, 8))
    assert model.train_batches == 4 and t.current_epoch == 2


Pair = namedtuple("Pair", ["x", "y"])


@dataclasses.dataclass
class Batch:
    x: torch.Tensor
    meta: str


@pytest.mark.parametrize("wrap", [
    lambda x, y: (x, y), lambda x, y: [x, y], lambda x, y: {"x": x, "y": y}, lambda x, y: Pair(x, y),
    lambda x, y: {"inner": [Batch(x, "m"), (y,)]},
])
def test_batch_structures_keep_their_type_through_transfer_and_precision(wrap: Any) -> None:
    types: list[Any] = []

    def collate(items: list[Any]) -> Any:
        x = torch.stack([i[0] for i in items])
        y = torch.stack([i[1] for i in items])
        return wrap(x, y)

    class Inspect(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            types.append(batch)
            leaves: list[torch.Tensor] = []
            _leaves(batch, leaves)
            return sum(self(t[:, :4]).sum() * 0 for t in leaves if t.dim() == 2 and t.shape[1] == 4) + \
                self.layer.weight.sum() * 0

    original = wrap(torch.zeros(1), torch.zeros(1))
    t = trainer(precision="64-true")
    t.fit(Inspect(), DataLoader(data(8), batch_size=4, collate_fn=collate))
    assert type(types[0]) is type(original)
    leaves: list[torch.Tensor] = []
    _leaves(types[0], leaves)
    assert all(leaf.dtype == torch.float64 for leaf in leaves)


def _leaves(obj: Any, out: list[torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _leaves(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _leaves(v, out)
    elif dataclasses.is_dataclass(obj):
        _leaves(obj.x, out)


def test_eval_switches_modes_and_restores_each_submodule() -> None:
    modes: list[tuple[bool, bool, bool, bool]] = []

    class Frozen(Tiny):
        def __init__(self, inference_mode: bool) -> None:
            super().__init__()
            self.frozen = torch.nn.BatchNorm1d(4).eval()

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            modes.append((self.training, self.frozen.training, torch.is_grad_enabled(),
                          torch.is_inference_mode_enabled()))

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
            modes.append((self.training, self.frozen.training, torch.is_grad_enabled(),
                          torch.is_inference_mode_enabled()))

    for inference in (True, False):
        modes.clear()
        trainer(inference_mode=inference).fit(Frozen(inference), loader(8, 8), loader(8, 8))
        assert modes == [(True, False, True, False), (False, False, False, inference)]


def test_max_steps_min_epochs_and_should_stop() -> None:
    t = trainer(max_epochs=10, max_steps=5)
    t.fit(Tiny(), loader(32, 8))
    assert t.global_step == 5 and t.current_epoch == 2  # the interrupted epoch still ends (as in Lightning)

    class StopNow(Tiny):
        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.trainer.should_stop = True

    t = trainer(max_epochs=10)
    t.fit(StopNow(), loader(32, 8))
    assert t.global_step == 1 and t.current_epoch == 1
    t = trainer(max_epochs=10, min_epochs=2)
    t.fit(StopNow(), loader(32, 8))
    assert t.current_epoch == 2 and t.global_step == 8  # min_epochs=2 keeps both epochs whole (as Lightning)


def test_accumulation_steps_and_normalized_outputs() -> None:
    outputs: list[float] = []
    raw: list[float] = []

    class Acc(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = super().training_step(batch, batch_idx)
            raw.append(loss.item())
            return loss

        def on_train_batch_end(self, out: Any, batch: Any, batch_idx: int) -> None:
            outputs.append(out["loss"].item())

    t = trainer(max_epochs=2, accumulate_grad_batches=3)
    t.fit(Acc(), loader(40, 8))
    assert t.global_step == 4  # ceil(5 / 3) per epoch
    assert outputs == pytest.approx([r / 3 for r in raw])
    assert t.estimated_stepping_batches == 4


def test_estimated_stepping_batches_before_fit_starts() -> None:
    class UsesEstimate(Tiny):
        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            total = self.trainer.estimated_stepping_batches
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=int(total))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    t = trainer(max_epochs=3)
    t.fit(UsesEstimate(), loader(32, 8))
    assert t.global_step == 12


def test_sanity_check_runs_limited_batches_and_keeps_rng_and_flags() -> None:
    flags: list[tuple[bool, bool, bool]] = []

    class Flags(Counting):
        def validation_step(self, batch: Any, batch_idx: int) -> None:
            flags.append((self.trainer.sanity_checking, self.trainer.validating, self.trainer.training))
            torch.rand(1)  # consuming RNG here must not change training's random stream
            super().validation_step(batch, batch_idx)

        def on_train_start(self) -> None:
            self.rng_at_train_start = torch.get_rng_state().clone()

    torch.manual_seed(0)
    model = Flags()
    trainer(num_sanity_val_steps=1, limit_val_batches=0.5).fit(model, loader(16, 8), loader(32, 8))
    assert flags[0] == (True, False, False) and flags[1] == (False, True, False)
    assert model.val_batches == 1 + 2
    torch.manual_seed(0)
    other = Flags()
    trainer(num_sanity_val_steps=0).fit(other, loader(16, 8), loader(32, 8))
    assert torch.equal(model.rng_at_train_start, other.rng_at_train_start)


def test_reload_dataloaders_every_epoch_and_datamodule_source() -> None:
    calls: list[str] = []

    class DM(tb.LightningDataModule):
        def train_dataloader(self) -> Any:
            calls.append("train")
            return loader(16, 8)

        def val_dataloader(self) -> Any:
            calls.append("val")
            return loader(8, 8)

    trainer(max_epochs=3, reload_dataloaders_every_n_epochs=1).fit(Tiny(), datamodule=DM())
    assert calls.count("train") == 3 and calls.count("val") == 3
    with pytest.raises(MisconfigurationException, match="cannot pass"):
        trainer().fit(Tiny(), loader(8, 8), datamodule=DM())


def test_several_train_loaders_are_combined() -> None:
    seen: list[Any] = []

    class Multi(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            seen.append(type(batch).__name__ + ":" + ",".join(sorted(batch) if isinstance(batch, dict) else "ab"))
            first = batch["a"] if isinstance(batch, dict) else batch[0]
            return super().training_step(first, batch_idx)

    t = trainer()
    t.fit(Multi(), {"a": loader(32, 8), "b": loader(16, 8)})
    assert t.num_training_batches == 4 and seen[0] == "dict:a,b"


def test_state_and_return_values_of_entry_points() -> None:
    model = Tiny()
    t = trainer()
    assert t.state.status == "initializing"
    t.fit(model, loader(16, 8), loader(8, 8))
    assert t.state.status == "finished" and t.state.fn == "fit" and t.state.stage is None
    assert t.lightning_module is model and t.optimizers and t.model is model
    results = t.test(model, loader(16, 8), verbose=False)
    assert list(results[0]) == ["test_loss"] and isinstance(results[0]["test_loss"], float)
    preds = t.predict(model, DataLoader(data(16).tensors[0], batch_size=8))
    assert len(preds) == 2 and preds[0].shape == (8, 1)
    assert t.predict(model, DataLoader(data(16).tensors[0], batch_size=8), return_predictions=False) is None
    with pytest.raises(MisconfigurationException, match="No `test_step"):
        class NoTest(tb.LightningModule):
            def training_step(self, batch: Any, batch_idx: int) -> Any: ...

        t.test(NoTest(), loader(8, 8))


def test_missing_pieces_have_clear_errors() -> None:
    class NoStep(tb.LightningModule):
        def configure_optimizers(self) -> Any:
            return None

    with pytest.raises(MisconfigurationException, match="training_step"):
        trainer().fit(NoStep(), loader(8, 8))
    with pytest.raises(MisconfigurationException, match="No training data"):
        trainer().fit(Tiny())
    with pytest.raises(MisconfigurationException, match="cannot be iterated"):
        trainer().fit(Tiny(), 42)


def test_seed_everything_makes_fits_repeatable() -> None:
    def run() -> torch.Tensor:
        tb.seed_everything(123, workers=True)
        model = Tiny()
        trainer(max_epochs=2).fit(model, loader(32, 8, shuffle=True))
        return model.layer.weight.detach().clone()

    assert torch.equal(run(), run())
    assert os.environ["PL_GLOBAL_SEED"] == "123" and os.environ["PL_SEED_WORKERS"] == "1"


def test_deterministic_flag_sets_torch_and_detect_anomaly_runs() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    try:
        trainer(deterministic=True, detect_anomaly=True).fit(Tiny(), loader(8, 8))
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


_SIGNAL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, torch
    sys.path.insert(0, {tests!r})
    import torchbolt as tb
    from _tb_helpers import Tiny, loader, QUIET
    events = []

    class Cb(tb.Callback):
        def on_exception(self, trainer, pl_module, exception):
            events.append("on_exception:" + type(exception).__name__)

    class SelfSignal(Tiny):
        def training_step(self, batch, batch_idx):
            if self.global_step == 2:
                os.kill(os.getpid(), signal.{sig})
            return super().training_step(batch, batch_idx)

        def teardown(self, stage):
            events.append("teardown")

    trainer = tb.Trainer(max_epochs=5, callbacks=[Cb()], **QUIET)
    try:
        trainer.fit(SelfSignal(), loader(64, 8))
    finally:
        print("EVENTS", events, trainer.global_step, trainer.interrupted, flush=True)
""")


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", None), ("SIGTERM", 128 + signal.SIGTERM)])
def test_signal_finishes_the_step_then_stops_gracefully(sig: str, code: int | None) -> None:
    script = _SIGNAL_SCRIPT.format(tests=os.path.dirname(__file__), sig=sig)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    if code is not None:
        assert proc.returncode == code
    else:
        assert "KeyboardInterrupt" in proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("EVENTS"))
    assert f"on_exception:{'KeyboardInterrupt' if sig == 'SIGINT' else 'SystemExit'}" in line
    assert "teardown" in line
    assert line.endswith(" 3 True")  # the step that received the signal completed: global_step 3


@pytest.mark.parametrize(("precision", "param_dtype", "autocast"), [
    ("32-true", torch.float32, False), ("64-true", torch.float64, False), ("bf16-mixed", torch.float32, True),
    ("bf16-true", torch.bfloat16, False),
])
def test_precision_converts_module_and_wraps_steps(precision: str, param_dtype: torch.dtype, autocast: bool) -> None:
    seen: list[tuple[torch.dtype, bool, torch.dtype]] = []

    class Watch(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            out = self(batch[0])
            seen.append((self.layer.weight.dtype, torch.is_autocast_enabled("cpu"), out.dtype))
            return torch.nn.functional.mse_loss(out.float(), batch[1].float())

    t = trainer(precision=precision)
    t.fit(Watch(), loader(8, 8))
    weight_dtype, autocast_on, _ = seen[0]
    assert weight_dtype == param_dtype and autocast_on == autocast
    assert t.precision == precision and t.lightning_module.dtype == param_dtype


def test_second_sigint_interrupts_immediately() -> None:
    script = _SIGNAL_SCRIPT.format(tests=os.path.dirname(__file__), sig="SIGINT").replace(
        "os.kill(os.getpid(), signal.SIGINT)",
        "os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGINT); import time; time.sleep(5)",
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("EVENTS"))
    assert "on_exception:KeyboardInterrupt" in line
    assert line.endswith(" 2 True")  # the step in progress did not complete


def test_iterable_without_length_validates_at_its_last_batch() -> None:
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self) -> Any:
            return iter(list(data(24)))

    model = Counting()
    t = trainer(max_epochs=2)
    t.fit(model, DataLoader(Stream(), batch_size=8), loader(8, 8))
    assert t.num_training_batches == float("inf")
    assert model.train_batches == 6 and model.val_runs == [(0, 3), (1, 6)]
    assert t.estimated_stepping_batches == -1  # unknown length and no max_steps: Lightning returns max_steps


def test_time_based_val_check_interval() -> None:
    clock = {"now": 0.0}

    class Clocked(Counting):
        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            clock["now"] += 4.0  # every batch "takes" 4 s on the patched clock

    import torchbolt.loops.fit as loop_module

    original = loop_module.time.monotonic
    loop_module.time.monotonic = lambda: clock["now"]  # type: ignore[assignment]
    try:
        model = Clocked()
        trainer(max_epochs=1, val_check_interval={"seconds": 10}).fit(model, loader(64, 8), loader(8, 8))
    finally:
        loop_module.time.monotonic = original  # type: ignore[assignment]
    assert [step for _, step in model.val_runs] == [3, 6]  # 12 s and 24 s after the previous check
    with pytest.raises(tb.utilities.exceptions.TrainerArgumentError, match="val_check_interval='soon'"):
        tb.Trainer(val_check_interval="soon")
