"""configure_optimizers: the six return shapes, scheduler configs, when schedulers step, and errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _tb_helpers import Tiny, loader, trainer
from torchbolt.core.optimizer import LightningOptimizer, MockOptimizer
from torchbolt.utilities.exceptions import MisconfigurationException


class Configurable(Tiny):
    def __init__(self, make: Any, automatic: bool = True) -> None:
        super().__init__()
        self.make = make
        self.automatic_optimization = automatic
        self.lrs: list[float] = []

    def configure_optimizers(self) -> Any:
        return self.make(self)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.lrs.append(self.trainer.optimizers[0].param_groups[0].get("lr", 0.0))


def _sgd(m: Any, lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD(m.parameters(), lr=lr)


def _fit(make: Any, epochs: int = 2, automatic: bool = True, **kwargs: Any) -> tuple[Any, Any]:
    model = Configurable(make, automatic)
    t = trainer(max_epochs=epochs, **kwargs)
    t.fit(model, loader(32, 8), loader(16, 8))
    return t, model


def test_shape_1_single_optimizer() -> None:
    t, _ = _fit(lambda m: _sgd(m))
    assert len(t.optimizers) == 1 and t.lr_scheduler_configs == []
    assert t.global_step == 8


def test_shape_2_lists_of_optimizers_and_schedulers() -> None:
    def make(m: Any) -> Any:
        opt = _sgd(m)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)]

    t, model = _fit(make)
    assert t.lr_scheduler_configs[0].interval == "epoch"
    # epoch interval: stepped on the last batch of each epoch, before on_train_batch_end
    assert model.lrs == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]


def test_shape_2_single_scheduler_not_in_a_list() -> None:
    def make(m: Any) -> Any:
        opt = _sgd(m)
        return [opt], torch.optim.lr_scheduler.StepLR(opt, step_size=1)

    t, _ = _fit(make, epochs=1)
    assert len(t.lr_scheduler_configs) == 1


def test_shape_3_dict_with_step_interval_and_frequency() -> None:
    def make(m: Any) -> Any:
        opt = _sgd(m)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 2,
                                                   "name": "my_lr"}}

    t, model = _fit(make, epochs=1)
    config = t.lr_scheduler_configs[0]
    assert (config.interval, config.frequency, config.name) == ("step", 2, "my_lr")
    assert model.lrs == [0.1, 0.05, 0.05, 0.025]


def test_shape_3_dict_without_scheduler() -> None:
    t, _ = _fit(lambda m: {"optimizer": _sgd(m)}, epochs=1)
    assert len(t.optimizers) == 1 and not t.lr_scheduler_configs


def test_shape_4_list_of_dicts_under_manual_optimization() -> None:
    class TwoOpts(Configurable):
        def training_step(self, batch: Any, batch_idx: int) -> None:
            a, b = self.optimizers()
            x, y = batch
            for opt in (a, b):
                opt.zero_grad()
                self.manual_backward(torch.nn.functional.mse_loss(self(x), y))
                opt.step()

    model = TwoOpts(lambda m: [{"optimizer": _sgd(m)}, {"optimizer": _sgd(m, 0.01)}], automatic=False)
    t = trainer(max_epochs=1)
    t.fit(model, loader(32, 8))
    assert len(t.optimizers) == 2
    assert t.global_step == 8  # every optimizer step counts under manual optimization


def test_shape_5_list_of_optimizers() -> None:
    class TwoOpts(Configurable):
        def training_step(self, batch: Any, batch_idx: int) -> None:
            for opt in self.optimizers():
                opt.zero_grad()
                x, y = batch
                self.manual_backward(torch.nn.functional.mse_loss(self(x), y))
                opt.step()

    model = TwoOpts(lambda m: (_sgd(m), _sgd(m)), automatic=False)
    t = trainer(max_epochs=1)
    t.fit(model, loader(32, 8))
    assert all(isinstance(o, LightningOptimizer) for o in model.optimizers())
    assert isinstance(model.optimizers(use_pl_optimizer=False)[0], torch.optim.SGD)


def test_shape_6_none_runs_without_updates() -> None:
    model = Configurable(lambda m: None)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.warns(UserWarning, match="no optimizer"):
        trainer(max_epochs=1).fit(model, loader(16, 8))
    assert isinstance(model.trainer.optimizers[0], MockOptimizer)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize(("make", "needle"), [
    (lambda m: "adam", "not a supported shape"),
    (lambda m: [1, 2, 3], "not a supported shape"),
    (lambda m: {"lr_scheduler": None}, "without an 'optimizer' key"),
    (lambda m: {"optimizer": 3}, "not an optimizer"),
])
def test_unknown_shapes_raise_a_clear_error(make: Any, needle: str) -> None:
    with pytest.raises(MisconfigurationException, match=needle):
        _fit(make, epochs=1)


def test_multiple_optimizers_need_manual_optimization() -> None:
    with pytest.raises(RuntimeError, match="manual optimization"):
        _fit(lambda m: [_sgd(m), _sgd(m)], epochs=1)


def test_scheduler_dict_errors() -> None:
    def missing(m: Any) -> Any:
        return {"optimizer": _sgd(m), "lr_scheduler": {"interval": "step"}}

    with pytest.raises(MisconfigurationException, match='key "scheduler"'):
        _fit(missing, epochs=1)

    def bad_interval(m: Any) -> Any:
        opt = _sgd(m)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1),
                                                   "interval": "batch"}}

    with pytest.raises(MisconfigurationException, match='"interval"'):
        _fit(bad_interval, epochs=1)

    def unknown_key(m: Any) -> Any:
        opt = _sgd(m)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.StepLR(opt, 1),
                                                   "intervall": "step"}}

    with pytest.warns(RuntimeWarning, match="unsupported keys"):
        _fit(unknown_key, epochs=1)


def test_scheduler_bound_to_another_optimizer_is_refused() -> None:
    def make(m: Any) -> Any:
        other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        return [_sgd(m)], [torch.optim.lr_scheduler.StepLR(other, 1)]

    with pytest.raises(MisconfigurationException, match="did not return"):
        _fit(make, epochs=1)


def test_reduce_on_plateau_needs_monitor_and_steps_on_validation_metric() -> None:
    def no_monitor(m: Any) -> Any:
        opt = _sgd(m)
        return [opt], [torch.optim.lr_scheduler.ReduceLROnPlateau(opt)]

    with pytest.raises(MisconfigurationException, match="must include a monitor"):
        _fit(no_monitor, epochs=1)

    def with_monitor(m: Any) -> Any:
        opt = _sgd(m)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=0, factor=0.5)
        return {"optimizer": opt, "lr_scheduler": sched, "monitor": "val_loss"}

    t, model = _fit(with_monitor, epochs=3)
    config = t.lr_scheduler_configs[0]
    assert config.reduce_on_plateau and config.monitor == "val_loss"
    # mode="max" on a loss that does not increase: the LR halves after the 2nd and 3rd epochs' validation
    assert t.optimizers[0].param_groups[0]["lr"] < 0.1


def test_plateau_on_missing_metric_strict_and_lenient() -> None:
    def make(strict: bool) -> Any:
        def inner(m: Any) -> Any:
            opt = _sgd(m)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "nope", "strict": strict}}
        return inner

    with pytest.raises(MisconfigurationException, match="nope which is not available"):
        _fit(make(True), epochs=1)
    with pytest.warns(RuntimeWarning, match="Skipping learning rate update"):
        _fit(make(False), epochs=1)


def test_lr_scheduler_step_override_steps_custom_schedulers() -> None:
    class Custom:
        def __init__(self, optimizer: torch.optim.Optimizer) -> None:
            self.optimizer = optimizer
            self.steps = 0

        def step(self) -> None:
            self.steps += 1

        def state_dict(self) -> dict[str, Any]:
            return {"steps": self.steps}

        def load_state_dict(self, state: dict[str, Any]) -> None:
            self.steps = state["steps"]

    def make(m: Any) -> Any:
        opt = _sgd(m)
        return [opt], [Custom(opt)]

    with pytest.raises(MisconfigurationException, match="lr_scheduler_step"):
        _fit(make, epochs=1)

    class Overrides(Configurable):
        def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
            scheduler.step()
            scheduler.step()

    model = Overrides(make)
    t = trainer(max_epochs=2)
    t.fit(model, loader(32, 8))
    assert t.lr_scheduler_configs[0].scheduler.steps == 4


def test_manual_optimization_does_not_step_schedulers() -> None:
    class Manual(Configurable):
        def training_step(self, batch: Any, batch_idx: int) -> None:
            opt = self.optimizers()
            opt.zero_grad()
            x, y = batch
            self.manual_backward(torch.nn.functional.mse_loss(self(x), y))
            opt.step()

    def make(m: Any) -> Any:
        opt = _sgd(m)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)]

    model = Manual(make, automatic=False)
    trainer(max_epochs=2).fit(model, loader(16, 8))
    assert model.trainer.optimizers[0].param_groups[0]["lr"] == 0.1
    assert model.lr_schedulers() is model.trainer.lr_scheduler_configs[0].scheduler


def test_gradient_clipping_norm_and_value() -> None:
    class Big(Tiny):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return self(batch[0]).sum() * 1000.0

        def on_before_optimizer_step(self, optimizer: Any) -> None:
            self.before = torch.cat([p.grad.flatten() for p in self.parameters()]).clone()

        def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.after_clip = self.clipped

        def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                        gradient_clip_algorithm: Any = None) -> None:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            self.clipped = torch.cat([p.grad.flatten() for p in self.parameters()]).clone()

    model = Big()
    trainer(max_epochs=1, gradient_clip_val=0.5).fit(model, loader(8, 8))
    assert model.before.norm() > 1.0
    assert model.after_clip.norm() == pytest.approx(0.5, rel=1e-4)
    model = Big()
    trainer(max_epochs=1, gradient_clip_val=0.01, gradient_clip_algorithm="value").fit(model, loader(8, 8))
    assert model.after_clip.abs().max() <= 0.01 + 1e-7


def test_clipping_conflicts_and_manual_restrictions() -> None:
    class Conflict(Tiny):
        def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                        gradient_clip_algorithm: Any = None) -> None:
            self.clip_gradients(optimizer, gradient_clip_val=3.0)

    with pytest.raises(MisconfigurationException, match="set only one"):
        trainer(gradient_clip_val=1.0).fit(Conflict(), loader(8, 8))

    manual = Tiny()
    manual.automatic_optimization = False
    with pytest.raises(MisconfigurationException, match="gradient_clip_val"):
        trainer(gradient_clip_val=1.0).fit(manual, loader(8, 8))
    with pytest.raises(MisconfigurationException, match="accumulate_grad_batches"):
        trainer(accumulate_grad_batches=2).fit(manual, loader(8, 8))


class _NoGradClosureSGD(torch.optim.Optimizer):
    """A custom optimizer that calls the closure inside its own no_grad step (torch's enable grad first)."""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss


def test_closure_enables_grad_when_the_optimizer_step_does_not() -> None:
    """The training closure turns grad mode on itself when an optimizer runs it under no_grad, so
    training_step builds a graph and backward fills the gradients."""
    seen: list[bool] = []

    class Watch(Configurable):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            seen.append(torch.is_grad_enabled())
            return super().training_step(batch, batch_idx)

    model = Watch(lambda m: _NoGradClosureSGD(m.parameters()))
    before = [p.detach().clone() for p in model.parameters()]
    t = trainer(max_epochs=1)
    t.fit(model, loader(32, 8))
    assert seen and all(seen)
    assert t.global_step == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
