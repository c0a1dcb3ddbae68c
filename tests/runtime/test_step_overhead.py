"""The per-step fast paths keep behaviour identical: batched epoch sums, repeated `self.log`, the closure
handed straight to the optimizer, and the TensorBoard logger's cached hparams check."""

from __future__ import annotations

import math
import os
import random
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchbolt
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.loggers import TensorBoardLogger
from torchbolt.trainer.metrics import fold_sum_exact


def _sequential(total: torch.Tensor, pending: list[tuple[torch.Tensor, int]], weighted: bool) -> torch.Tensor:
    for value, size in pending:
        total = total + value * size if weighted else total + value
    return total


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("sizes", ["equal", "varying"])
def test_fold_sum_exact_matches_one_addition_at_a_time(dtype: torch.dtype, weighted: bool, sizes: str) -> None:
    rng = random.Random(7)
    for trial in range(30):
        n = rng.randint(2, 300)
        # magnitudes over many binades, so the running sum rounds differently in almost every order
        values = [torch.tensor(rng.uniform(-1, 1) * 10 ** rng.uniform(-8, 6), dtype=dtype) for _ in range(n)]
        pending = [(v, 32 if sizes == "equal" else rng.randint(1, 97)) for v in values]
        start = torch.tensor(rng.uniform(-5, 5) if trial % 2 else 0.0, dtype=dtype)
        expected = _sequential(start, pending, weighted)
        got = fold_sum_exact(start, pending, weighted)
        assert got is not None and got.dtype == expected.dtype
        assert torch.equal(got, expected), (trial, got.item(), expected.item())


def test_fold_sum_exact_overflow_and_nan_follow_float32() -> None:
    big = torch.tensor(3.0e38)
    pending = [(big, 1), (big, 1), (torch.tensor(-1.0), 1)]
    got = fold_sum_exact(torch.tensor(0.0), pending, weighted=False)
    assert got is not None and math.isinf(got.item()) and got.item() > 0
    assert torch.equal(got, _sequential(torch.tensor(0.0), pending, weighted=False))
    pending = [(torch.tensor(1.0), 2), (torch.tensor(float("nan")), 2)]
    got = fold_sum_exact(torch.tensor(0.0), pending, weighted=True)
    assert got is not None and math.isnan(got.item())


def test_fold_sum_exact_declines_mixed_dtypes() -> None:
    pending = [(torch.tensor(1.0), 1), (torch.tensor(2.0, dtype=torch.float64), 1)]
    assert fold_sum_exact(torch.tensor(0.0), pending, weighted=True) is None


class _Logs(torchbolt.LightningModule):
    def __init__(self, steps: int, batch: int = 4) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)
        g = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.randn(steps * batch, 3, generator=g), torch.randint(0, 2, (steps * batch,),
                                                                                             generator=g))
        self.batch = batch
        self.losses: list[torch.Tensor] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.layer(x), y)
        self.losses.append(loss.detach().clone())
        self.log("loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("ones", torch.ones(1), reduce_fx="sum", on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=self.batch)


def _bare(**kwargs: Any) -> torchbolt.Trainer:
    return torchbolt.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                             enable_model_summary=False, **kwargs)


def test_repeated_log_records_every_step_and_epoch_values_are_exact() -> None:
    steps = 600  # more than one fold of pending values
    model = _Logs(steps)
    trainer = _bare()
    trainer.fit(model)
    expected = torch.tensor(0.0)
    for loss in model.losses:
        expected = expected + loss * model.batch
    expected = expected / torch.tensor(steps * model.batch)
    metrics = trainer.callback_metrics
    assert torch.equal(metrics["loss_epoch"], expected)
    assert torch.equal(metrics["loss_step"], model.losses[-1])
    assert metrics["ones"].item() == steps


def test_repeated_log_with_other_arguments_still_raises() -> None:
    class Changes(_Logs):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            self.log("x", loss, prog_bar=batch_idx == 1)
            return loss

    with pytest.raises(torchbolt.utilities.exceptions.MisconfigurationException, match="twice"):
        _bare().fit(Changes(4))


def test_repeated_log_of_integer_tensor_still_warns_every_time() -> None:
    class Ints(_Logs):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            self.log("count", torch.tensor(batch_idx))
            return loss

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _bare().fit(Ints(3))
    assert sum("integer tensor" in str(w.message) for w in caught) == 3


def test_repeated_log_of_a_vector_still_raises() -> None:
    class Vector(_Logs):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            loss = super().training_step(batch, batch_idx)
            self.log("v", torch.ones(1) if batch_idx == 0 else torch.ones(2))
            return loss

    with pytest.raises(ValueError, match="2 elements"):
        _bare().fit(Vector(3))


def test_optimizer_step_hooks_and_clipping_still_run_inside_the_step() -> None:
    seen: list[str] = []

    class Hooks(_Logs):
        def on_before_optimizer_step(self, optimizer: Any) -> None:
            seen.append("before_step")

        def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: Any = None,
                                        gradient_clip_algorithm: Any = None) -> None:
            seen.append("clip")

    _bare().fit(Hooks(2))
    assert seen == ["before_step", "clip"] * 2


def test_tensorboard_hparams_file_is_checked_once_then_again_at_finalize(tmp_path: Any) -> None:
    logger = TensorBoardLogger(tmp_path, name="run")
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"a": 1.0}, step=0)
    logger.save()
    hparams = os.path.join(logger.log_dir, "hparams.yaml")
    assert os.path.isfile(hparams)
    os.remove(hparams)
    logger.save()  # the per-step save trusts the earlier check
    assert not os.path.exists(hparams)
    logger.finalize("success")
    assert os.path.isfile(hparams)
    assert "lr: 0.1" in open(hparams, encoding="utf-8").read()


# -- the plain automatic step (bound once per epoch) --------------------------------------------------
def _hand_written_weights(model: _Logs, opt_cls: type, steps: int, **opt_kwargs: Any) -> list[torch.Tensor]:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    layer.load_state_dict(model.layer.state_dict())
    opt = opt_cls(layer.parameters(), **opt_kwargs)
    for x, y in DataLoader(model.data, batch_size=model.batch):
        loss = F.cross_entropy(layer(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach() for p in layer.parameters()]


@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, torch.optim.Adam, torch.optim.RMSprop])
def test_plain_step_updates_like_a_hand_written_loop(opt_cls: type) -> None:
    class Model(_Logs):
        def configure_optimizers(self) -> torch.optim.Optimizer:
            return opt_cls(self.parameters(), lr=0.05)

    model = Model(6)
    expected = _hand_written_weights(model, opt_cls, 6, lr=0.05)
    trainer = _bare()
    trainer.fit(model)
    assert trainer.global_step == 6
    for got, want in zip(model.layer.parameters(), expected, strict=True):
        torch.testing.assert_close(got.detach(), want, rtol=0, atol=1e-7)
    progress = trainer._loops.state.fit.optim
    assert (progress.step.total.ready, progress.step.total.completed) == (6, 6)
    assert (progress.zero_grad.total.started, progress.zero_grad.total.completed) == (6, 6)


@pytest.mark.parametrize("where", ["instance", "global"])
def test_step_pre_hooks_still_run_before_training_step(where: str) -> None:
    seen: list[str] = []

    class Model(_Logs):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            seen.append(f"training_step {batch_idx}")
            return super().training_step(batch, batch_idx)

        def on_train_start(self) -> None:
            optimizer = self.trainer.optimizers[0]
            if where == "instance":
                optimizer.register_step_pre_hook(lambda *_: seen.append("pre_hook"))
            optimizer.register_step_post_hook(lambda *_: seen.append("post_hook"))

    handle = (register_optimizer_step_pre_hook(lambda *_: seen.append("pre_hook"))
              if where == "global" else None)
    try:
        _bare().fit(Model(2))
    finally:
        if handle is not None:
            handle.remove()
    assert seen == ["pre_hook", "training_step 0", "post_hook", "pre_hook", "training_step 1", "post_hook"]


def test_step_hands_over_when_a_callback_turns_clipping_on_mid_epoch() -> None:
    """A change between batches (clipping switched on after batch 2) moves the next steps to the full path;
    `self.log`'s hook context is `training_step` throughout and the optimizer steps on every batch, also
    when training_step returns None."""
    fx_seen: list[str | None] = []
    deltas: list[float] = []

    class Model(_Logs):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            fx_seen.append(self.trainer._ctx.fx)
            loss = super().training_step(batch, batch_idx)
            return None if batch_idx == 5 else loss

    class Watch(torchbolt.Callback):
        def on_train_batch_start(self, trainer: Any, pl_module: Any, *args: Any) -> None:
            self.before = pl_module.layer.weight.detach().clone()

        def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
            deltas.append((pl_module.layer.weight.detach() - self.before).abs().max().item())
            if trainer.global_step == 3:
                trainer.gradient_clip_val = 1e-9  # norm clipping: the next updates nearly vanish

    model = Model(6)
    posts: list[int] = []
    trainer = _bare(callbacks=[Watch()])
    model.on_train_start = lambda: trainer.optimizers[0].register_step_post_hook(  # type: ignore[method-assign]
        lambda *_: posts.append(1))
    with pytest.warns(UserWarning, match="returned `None`"):
        trainer.fit(model)
    assert all(d > 1e-4 for d in deltas[:3]), deltas
    assert all(d < 1e-8 for d in deltas[3:]), deltas
    assert fx_seen == ["training_step"] * 6
    assert len(posts) == 6 and trainer.global_step == 6


def test_plain_step_hands_on_train_batch_end_the_detached_loss_and_the_extras() -> None:
    outputs: list[Any] = []
    losses: list[torch.Tensor] = []

    class Model(_Logs):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            loss = super().training_step(batch, batch_idx)
            losses.append(loss.detach().clone())
            return {"loss": loss, "idx": batch_idx}

        def on_train_batch_end(self, outputs_: Any, batch: Any, batch_idx: int) -> None:
            outputs.append(outputs_)

    _bare().fit(Model(3))
    assert [o["idx"] for o in outputs] == [0, 1, 2]
    for out, loss in zip(outputs, losses, strict=True):
        assert not out["loss"].requires_grad and torch.equal(out["loss"], loss)
