"""LightningModule members: hyper-parameters, device, optimizer helpers, 1.x epoch-end compatibility."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import pytest
import torch
import torchbolt as tb
from _tb_helpers import QUIET, Tiny, loader, trainer
from torchbolt.utilities.exceptions import MisconfigurationException


class HP(tb.LightningModule):
    def __init__(self, lr: float = 0.1, layers: int = 2, config: dict[str, Any] | None = None,
                 backbone: Any = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])


class Child(HP):
    def __init__(self, extra: str = "x", **kwargs: Any) -> None:
        super().__init__(**kwargs)


def test_save_hyperparameters_collects_init_arguments_with_ignore_and_nesting() -> None:
    model = HP(lr=0.5, config={"optim": {"betas": [0.9, 0.99]}}, backbone=torch.nn.Linear(1, 1))
    assert dict(model.hparams) == {"lr": 0.5, "layers": 2, "config": {"optim": {"betas": [0.9, 0.99]}}}
    assert model.hparams.lr == 0.5 and model.hparams.config["optim"]["betas"][1] == 0.99
    model.hparams.lr = 1.0
    assert model.hparams_initial.lr == 0.5
    assert model._hparams_name == "kwargs"


def test_save_hyperparameters_in_a_base_class_sees_subclass_arguments() -> None:
    model = Child(extra="y", lr=0.3)
    assert model.hparams.lr == 0.3 and model.hparams.extra == "y"


def test_save_hyperparameters_named_dict_and_namespace() -> None:
    class Named(tb.LightningModule):
        def __init__(self, a: int = 1, b: int = 2) -> None:
            super().__init__()
            self.save_hyperparameters("a")

    assert dict(Named(a=5).hparams) == {"a": 5}

    class FromDict(tb.LightningModule):
        def __init__(self, conf: dict[str, Any]) -> None:
            super().__init__()
            self.save_hyperparameters(conf)

    assert dict(FromDict({"x": 1}).hparams) == {"x": 1}

    class FromNamespace(tb.LightningModule):
        def __init__(self, ns: argparse.Namespace) -> None:
            super().__init__()
            self.save_hyperparameters(ns)

    assert FromNamespace(argparse.Namespace(depth=3)).hparams.depth == 3

    class Wrong(tb.LightningModule):
        def __init__(self, a: int = 1) -> None:
            super().__init__()
            self.save_hyperparameters("nope")

    with pytest.raises(ValueError, match="'nope' is not an argument of __init__"):
        Wrong()


def test_detached_module_defaults_and_trainer_property() -> None:
    model = Tiny()
    assert model.current_epoch == 0 and model.global_step == 0 and model.logger is None and model.loggers == []
    with pytest.raises(RuntimeError, match="not attached to a `Trainer`"):
        _ = model.trainer
    assert model.device == torch.device("cpu")
    model.to(torch.float64)
    assert model.dtype == torch.float64 and model.layer.weight.dtype == torch.float64


def test_trainer_state_is_visible_from_the_module() -> None:
    seen: list[tuple[int, int]] = []

    class Watch(Tiny):
        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            seen.append((self.current_epoch, self.global_step))

    t = trainer(max_epochs=2)
    t.fit(Watch(), loader(16, 8))
    assert seen == [(0, 1), (0, 2), (1, 3), (1, 4)]
    assert t.current_epoch == 2 and t.global_step == 4


def test_freeze_unfreeze() -> None:
    model = Tiny()
    model.freeze()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    model.unfreeze()
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_toggle_untoggle_and_toggled_optimizer() -> None:
    states: list[tuple[bool, bool]] = []

    class Gan(tb.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.g = torch.nn.Linear(4, 1)
            self.d = torch.nn.Linear(4, 1)
            self.automatic_optimization = False

        def training_step(self, batch: Any, batch_idx: int) -> None:
            opt_g, opt_d = self.optimizers()
            with self.toggled_optimizer(opt_g):
                states.append((self.g.weight.requires_grad, self.d.weight.requires_grad))
                loss = self.g(batch[0]).mean()
                opt_g.zero_grad()
                self.manual_backward(loss)
                opt_g.step()
            states.append((self.g.weight.requires_grad, self.d.weight.requires_grad))
            self.toggle_optimizer(opt_d)
            states.append((self.g.weight.requires_grad, self.d.weight.requires_grad))
            self.untoggle_optimizer(opt_d)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.g.parameters(), lr=0.1), torch.optim.SGD(self.d.parameters(), lr=0.1)

    trainer().fit(Gan(), loader(8, 8))
    assert states == [(True, False), (True, True), (False, True)]


def test_manual_backward_requires_manual_optimization() -> None:
    class Wrong(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = super().training_step(batch, batch_idx)
            self.manual_backward(loss)
            return loss

    with pytest.raises(MisconfigurationException, match="automatic_optimization = False"):
        trainer().fit(Wrong(), loader(8, 8))


def test_all_gather_is_identity_and_print_writes(capsys: pytest.CaptureFixture[str]) -> None:
    model = Tiny()
    t = torch.arange(3)
    assert model.all_gather(t) is t
    gathered = model.all_gather({"a": 1.5, "b": [t]})
    assert gathered["a"].item() == 1.5 and gathered["b"][0] is t
    model.print("hello", 1)
    assert capsys.readouterr().out == "hello 1\n"


def test_legacy_epoch_end_hooks_receive_outputs_and_warn_once() -> None:
    received: dict[str, Any] = {}

    class Legacy(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = super().training_step(batch, batch_idx)
            return {"loss": loss, "idx": batch_idx}

        def training_epoch_end(self, outputs: list[Any]) -> None:
            received.setdefault("train", []).append([o["idx"] for o in outputs])

        def validation_step(self, batch: Any, batch_idx: int) -> Any:
            return batch_idx * 10

        def validation_epoch_end(self, outputs: list[Any]) -> None:
            received.setdefault("val", []).append(list(outputs))
            self.log("val_metric", float(sum(outputs)))

        def test_step(self, batch: Any, batch_idx: int) -> Any:
            return batch_idx

        def test_epoch_end(self, outputs: list[Any]) -> None:
            received["test"] = list(outputs)

    t = trainer(max_epochs=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.fit(Legacy(), loader(24, 8), loader(16, 8))
        val_metric = t.callback_metrics["val_metric"].item()  # each run starts with empty metrics (Lightning)
        t.test(t.lightning_module, loader(16, 8), verbose=False)
    assert received["train"] == [[0, 1, 2], [0, 1, 2]]
    assert received["val"] == [[0, 10], [0, 10]]
    assert received["test"] == [0, 1]
    assert val_metric == 10.0
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert sum("training_epoch_end" in m for m in messages) == 1
    assert any("on_validation_epoch_end" in m for m in messages)


def test_step_end_hooks_are_refused_with_the_replacement() -> None:
    class Old(Tiny):
        def training_step_end(self, outputs: Any) -> Any:
            return outputs

    with pytest.raises(NotImplementedError, match="on_train_batch_end"):
        trainer().fit(Old(), loader(8, 8))


def test_load_from_checkpoint_round_trip(tmp_path: Any) -> None:
    class Saved(Tiny):
        def __init__(self, lr: float = 0.1, width: int = 4) -> None:
            super().__init__(lr)
            self.save_hyperparameters()

    t = trainer()
    model = Saved(width=4, lr=0.2)
    t.fit(model, loader(8, 8))
    path = tmp_path / "m.ckpt"
    t.save_checkpoint(path)
    loaded = Saved.load_from_checkpoint(path)
    assert loaded.hparams.lr == 0.2
    assert torch.equal(loaded.layer.weight, model.layer.weight)
    assert Saved.load_from_checkpoint(path, lr=0.7).hparams.lr == 0.7


def test_save_checkpoint_before_a_run_raises() -> None:
    with pytest.raises(AttributeError, match="model is attached"):
        tb.Trainer(max_epochs=1, **QUIET).save_checkpoint("x.ckpt")


def test_to_torchscript(tmp_path: Any) -> None:
    model = Tiny()
    scripted = model.to_torchscript(tmp_path / "m.pt", method="trace", example_inputs=torch.zeros(2, 4))
    assert torch.allclose(scripted(torch.ones(2, 4)), model(torch.ones(2, 4)))
    assert (tmp_path / "m.pt").exists()


def test_validate_without_a_model_after_fit_uses_the_best_checkpoint(tmp_path: Any) -> None:
    t = tb.Trainer(max_epochs=2, default_root_dir=str(tmp_path), logger=False, enable_progress_bar=False,
                   enable_model_summary=False)
    model = Tiny()
    t.fit(model, loader(16, 8), loader(8, 8))
    best = t.checkpoint_callback.best_model_path
    assert best
    with torch.no_grad():
        model.layer.weight.fill_(100.0)  # diverge from the saved weights
    with pytest.warns(UserWarning, match="best model"):
        t.validate(dataloaders=loader(8, 8), verbose=False)
    assert t.ckpt_path == best
    assert model.layer.weight.abs().max() < 100.0


def test_default_transfer_moves_tensors_inside_every_collection() -> None:
    import dataclasses
    from collections import namedtuple

    Pair = namedtuple("Pair", ["a", "b"])

    @dataclasses.dataclass
    class Item:
        t: torch.Tensor
        name: str

    batch = {"pair": Pair(torch.ones(1), [torch.zeros(2), "text"]), "item": Item(torch.ones(3), "n"), "n": 3}
    moved = Tiny().transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert type(moved["pair"]) is Pair and moved["pair"].a.device.type == "meta"
    assert moved["pair"].b[0].device.type == "meta" and moved["pair"].b[1] == "text"
    assert isinstance(moved["item"], Item) and moved["item"].t.device.type == "meta" and moved["item"].name == "n"
    assert moved["n"] == 3 and batch["item"].t.device.type == "cpu"
