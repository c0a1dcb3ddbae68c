"""The runtime's structure as behaviour: frozen requests, no attributes written onto the Trainer by the loops,
one dispatcher for every hook (unknown names refused), and the per-run step plan."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch
import torchbolt as tb
from _tb_helpers import Tiny, loader, trainer
from torchbolt.trainer.dispatch import HookDispatcher, RunContext, UnknownHookError
from torchbolt.trainer.requests import EvaluateRequest, FitRequest, PredictRequest
from torchbolt.trainer.state import TrainerFn
from torchbolt.utilities.exceptions import MisconfigurationException


def test_requests_are_frozen_and_carry_the_call() -> None:
    fit = FitRequest.make(None, "train", None, "last", True)
    assert fit.fn == TrainerFn.FITTING and fit.model_given and fit.weights_only is True
    assert fit.loader_source("train_dataloader") == "train" and fit.loader_source("val_dataloader") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.ckpt_path = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        fit.dataloaders["val_dataloader"] = "x"  # type: ignore[index]
    test = EvaluateRequest.make(TrainerFn.TESTING, False, None, "dl", None, None, verbose=False)
    assert test.loader_source("test_dataloader") == "dl" and not test.verbose and not test.model_given
    predict = PredictRequest.make(True, None, None, None, None, return_predictions=None)
    assert predict.return_predictions is True


def test_entry_points_write_no_new_trainer_attributes() -> None:
    class Predicting(Tiny):
        def predict_step(self, batch: Any, batch_idx: int) -> Any:
            return self(batch[0])

    t = trainer(max_epochs=2, num_sanity_val_steps=1)
    before = set(vars(t))
    model = Predicting()
    t.fit(model, loader(16, 8), loader(8, 8))
    t.validate(model, loader(8, 8), verbose=False)
    t.test(model, loader(8, 8), verbose=False)
    t.predict(model, loader(8, 8), return_predictions=False)
    assert set(vars(t)) == before  # per-call options live in the request, loop state in LoopState


def test_unknown_hook_names_are_errors() -> None:
    t = trainer()
    t.fit(Tiny(), loader(8, 8))
    hooks = t._hooks
    with pytest.raises(UnknownHookError, match="on_trian_start"):
        hooks.call("on_trian_start")
    with pytest.raises(UnknownHookError):
        hooks.has("on_trian_start")
    with pytest.raises(UnknownHookError):
        hooks.call_module("trainig_step")
    with pytest.raises(UnknownHookError):
        hooks.call_part("on_save_chekpoint", "module", {})
    with pytest.raises(UnknownHookError):
        hooks.call("state_dict")  # per-owner state goes through collect_states / load_callback_states
    assert hooks.call("on_predict_start") is None  # declared, implemented by nobody: a no-op
    assert HookDispatcher(t, RunContext()).has("on_train_start") is False


def test_checkpoint_hooks_and_prepare_data_go_through_the_dispatcher(tmp_path: Path) -> None:
    seen: list[tuple[str, str | None]] = []

    class Data(tb.LightningDataModule):
        def prepare_data(self) -> None:
            seen.append(("dm.prepare_data", self.trainer.lightning_module._current_fx_name))

        def train_dataloader(self) -> Any:
            return loader(8, 8)

        def state_dict(self) -> dict[str, Any]:
            return {"dm": 1}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            seen.append(("dm.load_state_dict", str(state)))

    class Model(Tiny):
        def prepare_data(self) -> None:
            seen.append(("module.prepare_data", self._current_fx_name))

        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            seen.append(("module.on_save_checkpoint", self._current_fx_name))

        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            seen.append(("module.on_load_checkpoint", self._current_fx_name))

    class Cb(tb.Callback):
        def state_dict(self) -> dict[str, Any]:
            return {"n": 3}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            seen.append(("cb.load_state_dict", str(state)))

        def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            seen.append(("cb.on_save_checkpoint", pl_module._current_fx_name))

        def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            seen.append(("cb.on_load_checkpoint", pl_module._current_fx_name))

    t = trainer(callbacks=[Cb()])
    t.fit(Model(), datamodule=Data())
    path = tmp_path / "a.ckpt"
    t.save_checkpoint(path)
    assert seen[:2] == [("dm.prepare_data", "prepare_data"), ("module.prepare_data", "prepare_data")]
    assert seen[2:] == [("cb.on_save_checkpoint", "on_save_checkpoint"),
                        ("module.on_save_checkpoint", "on_save_checkpoint")]
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["callbacks"] == {Cb.__qualname__: {"n": 3}} and ckpt[Data.__qualname__] == {"dm": 1}
    seen.clear()
    t.save_checkpoint(tmp_path / "w.ckpt", weights_only=True)
    assert seen == [("module.on_save_checkpoint", "on_save_checkpoint")]  # callbacks skip weights-only files
    seen.clear()
    trainer(callbacks=[Cb()], max_epochs=2).fit(Model(), datamodule=Data(), ckpt_path=path)
    restore = [s for s in seen if "prepare_data" not in s[0] and "on_save" not in s[0]]
    assert restore == [("module.on_load_checkpoint", "on_load_checkpoint"), ("dm.load_state_dict", "{'dm': 1}"),
                       ("cb.on_load_checkpoint", "on_load_checkpoint"), ("cb.load_state_dict", "{'n': 3}")]


def test_step_plan_is_decided_once_from_the_hooks_in_use() -> None:
    class Clip(Tiny):
        def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                        gradient_clip_algorithm: Any = None) -> None:
            pass

    class BatchStart(tb.Callback):
        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            pass

    plain = trainer()
    plain.fit(Tiny(), loader(8, 8))
    plan = plain._loops.plan
    assert plan.direct_step and plan.automatic and not plan.train_batch_start and not plan.transfer
    assert plan.takes_idx["training_step"]
    hooked = trainer(callbacks=[BatchStart()])
    hooked.fit(Clip(), loader(8, 8))
    plan = hooked._loops.plan
    assert plan.train_batch_start and plan.clip_overridden and not plan.direct_step
    assert trainer(precision="bf16-mixed")._loops is not None
    mixed = trainer(precision="64-true")
    mixed.fit(Tiny(), loader(8, 8))
    assert mixed._loops.plan.transfer and not mixed._loops.plan.precision_noop


def test_missing_monitor_after_validation_ran_is_an_error_as_in_lightning(tmp_path: Path) -> None:
    t = tb.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                   num_sanity_val_steps=0, default_root_dir=tmp_path,
                   callbacks=[tb.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val_acc")])
    with pytest.raises(MisconfigurationException, match="val_acc"):
        t.fit(Tiny(), loader(8, 8), loader(8, 8))
    assert t.validation_has_run


def test_the_module_reads_nothing_private_of_the_trainer_but_its_channel() -> None:
    import re

    import torchbolt.core as core

    private = set()
    for path in Path(core.__file__).parent.glob("*.py"):
        private |= set(re.findall(r"trainer\._([a-z]\w*)", path.read_text()))
    assert private == {"channel"}
    t = trainer()
    assert t._channel.context is t._ctx and t._channel.metrics is t._metrics
