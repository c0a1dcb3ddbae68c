"""Hook call order of fit / validate / test / predict, as written in reference §2 (recorded on entry)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchbolt as tb
from _tb_helpers import QUIET, Tiny, loader
from torchbolt.catalog import CALLBACK_HOOKS, MODULE_HOOKS

_NOT_RECORDED = {"forward", "configure_callbacks", "train_dataloader", "val_dataloader", "test_dataloader",
                 "predict_dataloader", "configure_model", "configure_sharded_model", "prepare_data",
                 "on_save_checkpoint", "on_load_checkpoint", "training_step", "validation_step", "test_step",
                 "predict_step", "configure_optimizers"}


def recording_classes(log: list[str], base: type = Tiny) -> tuple[type, type]:
    """A module and a callback class whose every hook appends its name to `log` on entry."""

    class Rec(base):  # type: ignore[misc,valid-type]
        pass

    for hook in MODULE_HOOKS:
        if hook.name in _NOT_RECORDED or hook.only_if_overridden and hook.name != "on_validation_model_train":
            continue

        def make(name: str) -> Any:
            original = getattr(base, name)

            def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
                log.append(name)
                return original(self, *args, **kwargs)

            return wrapper

        setattr(Rec, hook.name, make(hook.name))

    class RecCb(tb.Callback):
        pass

    for hook in CALLBACK_HOOKS:
        if hook.name in ("state_dict", "load_state_dict", "on_save_checkpoint", "on_load_checkpoint"):
            continue

        def make_cb(name: str) -> Any:
            def wrapper(self: Any, trainer: Any, pl_module: Any, *args: Any) -> None:
                log.append("CB." + name)

            return wrapper

        setattr(RecCb, hook.name, make_cb(hook.name))
    return Rec, RecCb


def _transfer() -> list[str]:
    return ["on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"]


def _val_batch(prefix: str = "validation") -> list[str]:
    return [*_transfer(), f"CB.on_{prefix}_batch_start", f"on_{prefix}_batch_start",
            f"CB.on_{prefix}_batch_end", f"on_{prefix}_batch_end"]


def _val_run(batches: int, in_fit: bool) -> list[str]:
    seq = ["on_validation_model_zero_grad"] if in_fit else []
    seq += ["on_validation_model_eval", "CB.on_validation_start", "on_validation_start",
            "CB.on_validation_epoch_start", "on_validation_epoch_start"]
    for _ in range(batches):
        seq += _val_batch()
    seq += ["CB.on_validation_epoch_end", "on_validation_epoch_end", "CB.on_validation_end", "on_validation_end",
            "on_validation_model_train"]
    return seq


def _auto_batch(last: bool) -> list[str]:
    seq = [*_transfer(), "CB.on_train_batch_start", "on_train_batch_start", "optimizer_step",
           "CB.on_before_zero_grad", "on_before_zero_grad", "optimizer_zero_grad",
           "CB.on_before_backward", "on_before_backward", "backward", "CB.on_after_backward", "on_after_backward",
           "CB.on_before_optimizer_step", "on_before_optimizer_step", "configure_gradient_clipping"]
    if last:
        seq.append("lr_scheduler_step")
    return [*seq, "CB.on_train_batch_end", "on_train_batch_end"]


class WithScheduler(Tiny):
    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=0.1)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1)]


def test_fit_order_matches_reference_2_1() -> None:
    log: list[str] = []
    Rec, RecCb = recording_classes(log, WithScheduler)
    trainer = tb.Trainer(max_epochs=1, callbacks=[RecCb()], num_sanity_val_steps=2, **QUIET)
    trainer.fit(Rec(), loader(16, 8), loader(16, 8))
    expected = ["CB.setup", "setup", "CB.on_fit_start", "on_fit_start",
                "CB.on_sanity_check_start",
                *[h for h in _val_run(2, in_fit=False)],
                "CB.on_sanity_check_end",
                "CB.on_train_start", "on_train_start", "CB.on_train_epoch_start", "on_train_epoch_start",
                *_auto_batch(last=False), *_auto_batch(last=True),
                *_val_run(2, in_fit=True),
                "CB.on_train_epoch_end", "on_train_epoch_end",
                "CB.on_train_end", "on_train_end", "CB.on_fit_end", "on_fit_end", "CB.teardown", "teardown"]
    assert log == expected


def test_manual_optimization_order_matches_reference_2_2() -> None:
    log: list[str] = []

    class Manual(Tiny):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> None:
            opt = self.optimizers()
            opt.zero_grad()
            x, y = batch
            self.manual_backward(torch.nn.functional.mse_loss(self(x), y))
            opt.step()

    Rec, RecCb = recording_classes(log, Manual)
    trainer = tb.Trainer(max_epochs=1, callbacks=[RecCb()], **QUIET)
    trainer.fit(Rec(), loader(8, 8))
    batch = [*_transfer(), "CB.on_train_batch_start", "on_train_batch_start",
             "CB.on_before_backward", "on_before_backward", "backward", "CB.on_after_backward", "on_after_backward",
             "CB.on_before_optimizer_step", "on_before_optimizer_step", "CB.on_train_batch_end", "on_train_batch_end"]
    start = log.index("on_train_epoch_start") + 1
    assert log[start:start + len(batch)] == batch
    assert "optimizer_step" not in log and "optimizer_zero_grad" not in log and "lr_scheduler_step" not in log


@pytest.mark.parametrize("fn", ["validate", "test"])
def test_validate_and_test_order_match_reference_2_3(fn: str) -> None:
    log: list[str] = []
    Rec, RecCb = recording_classes(log)
    trainer = tb.Trainer(callbacks=[RecCb()], max_epochs=1, **QUIET)
    getattr(trainer, fn)(Rec(), loader(16, 8), verbose=False)
    p = "validation" if fn == "validate" else "test"
    expected = ["CB.setup", "setup", f"on_{p}_model_eval", f"CB.on_{p}_start", f"on_{p}_start",
                f"CB.on_{p}_epoch_start", f"on_{p}_epoch_start", *_val_batch(p), *_val_batch(p),
                f"CB.on_{p}_epoch_end", f"on_{p}_epoch_end", f"CB.on_{p}_end", f"on_{p}_end"]
    if fn == "validate":
        expected.append("on_validation_model_train")
    expected += ["CB.teardown", "teardown"]
    assert log == expected


class Predicts(Tiny):
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self(batch[0])


def test_predict_order_matches_reference_2_4() -> None:
    log: list[str] = []
    Rec, RecCb = recording_classes(log, Predicts)
    trainer = tb.Trainer(callbacks=[RecCb()], max_epochs=1, **QUIET)
    out = trainer.predict(Rec(), loader(16, 8))
    batch = [*_transfer(), "CB.on_predict_batch_start", "on_predict_batch_start", "CB.on_predict_batch_end",
             "on_predict_batch_end"]
    expected = ["CB.setup", "setup", "on_predict_model_eval", "CB.on_predict_start", "on_predict_start",
                "CB.on_predict_epoch_start", "on_predict_epoch_start", *batch, *batch, "CB.on_predict_epoch_end",
                "on_predict_epoch_end", "CB.on_predict_end", "on_predict_end", "CB.teardown", "teardown"]
    assert log == expected
    assert out is not None and len(out) == 2 and out[0].shape == (8, 1)


def test_monitoring_callbacks_run_after_the_module_on_train_epoch_end() -> None:
    log: list[str] = []

    class Plain(tb.Callback):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            log.append("plain")

    class Monitoring(tb.Callback):
        _monitoring = True

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            log.append("monitoring")

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            log.append("monitoring.on_validation_end")

    class Module(Tiny):
        def on_train_epoch_end(self) -> None:
            log.append("module")

        def on_validation_end(self) -> None:
            log.append("module.on_validation_end")

    trainer = tb.Trainer(max_epochs=1, callbacks=[Monitoring(), Plain()], num_sanity_val_steps=0, **QUIET)
    trainer.fit(Module(), loader(8, 8), loader(8, 8))
    assert log == ["monitoring.on_validation_end", "module.on_validation_end", "plain", "module", "monitoring"]


def test_datamodule_order_reference_2_5_and_batch_hooks_of_the_datamodule_win() -> None:
    log: list[str] = []

    class DM(tb.LightningDataModule):
        def prepare_data(self) -> None:
            log.append("dm.prepare_data")

        def setup(self, stage: str) -> None:
            log.append(f"dm.setup:{stage}")

        def train_dataloader(self) -> Any:
            log.append("dm.train_dataloader")
            return loader(8, 8)

        def val_dataloader(self) -> Any:
            log.append("dm.val_dataloader")
            return loader(8, 8)

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            log.append("dm.on_after_batch_transfer")
            return batch

        def teardown(self, stage: str) -> None:
            log.append(f"dm.teardown:{stage}")

    class Module(Tiny):
        def prepare_data(self) -> None:
            log.append("module.prepare_data")

        def setup(self, stage: str) -> None:
            log.append(f"module.setup:{stage}")

        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            log.append("module.on_after_batch_transfer")
            return batch

        def teardown(self, stage: str) -> None:
            log.append(f"module.teardown:{stage}")

    class Cb(tb.Callback):
        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            log.append(f"cb.setup:{stage}")

    trainer = tb.Trainer(max_epochs=1, callbacks=[Cb()], **QUIET)
    trainer.fit(Module(), datamodule=DM())
    assert log == ["dm.prepare_data", "module.prepare_data", "dm.setup:fit", "cb.setup:fit", "module.setup:fit",
                   "dm.val_dataloader", "dm.on_after_batch_transfer", "dm.train_dataloader",
                   "dm.on_after_batch_transfer", "dm.on_after_batch_transfer", "dm.teardown:fit",
                   "module.teardown:fit"]


def test_on_exception_order_then_teardown_and_failed_loggers() -> None:
    log: list[str] = []

    class Boom(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            raise ValueError("boom")

        def teardown(self, stage: str) -> None:
            log.append("module.teardown")

    class DM(tb.LightningDataModule):
        def train_dataloader(self) -> Any:
            return loader(8, 8)

        def on_exception(self, exception: BaseException) -> None:
            log.append(f"dm.on_exception:{exception}")

    class Cb(tb.Callback):
        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            log.append(f"cb.on_exception:{exception}")

    class Logger:
        log_dir = None

        def log_metrics(self, metrics: Any, step: Any = None) -> None: ...

        def log_hyperparams(self, params: Any) -> None: ...

        def save(self) -> None: ...

        def finalize(self, status: str) -> None:
            log.append(f"logger.finalize:{status}")

    trainer = tb.Trainer(max_epochs=1, callbacks=[Cb()], logger=Logger(), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ValueError, match="boom"):
        trainer.fit(Boom(), datamodule=DM())
    assert log == ["cb.on_exception:boom", "dm.on_exception:boom", "logger.finalize:failed", "module.teardown"]
    assert trainer.interrupted and trainer.state.status == "interrupted"


def test_configure_callbacks_replaces_same_type_and_puts_checkpoints_last() -> None:
    from torchbolt.callbacks import ModelCheckpoint

    class Marker(tb.Callback):
        def __init__(self, tag: str) -> None:
            self.tag = tag

    class Module(Tiny):
        def configure_callbacks(self) -> Any:
            return [ModelCheckpoint(), Marker("module")]

    trainer = tb.Trainer(max_epochs=1, callbacks=[Marker("trainer")], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(Module(), loader(8, 8))
    markers = [cb.tag for cb in trainer.callbacks if isinstance(cb, Marker)]
    assert markers == ["module"]
    assert isinstance(trainer.callbacks[-1], ModelCheckpoint)


def test_hooks_set_to_none_or_assigned_on_the_instance() -> None:
    seen: list[str] = []
    model = Tiny()
    model.on_train_start = lambda: seen.append("instance hook")  # type: ignore[method-assign]
    tb.Trainer(max_epochs=1, **QUIET).fit(model, loader(8, 8))
    assert seen == ["instance hook"]
