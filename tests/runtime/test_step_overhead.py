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
