"""Small deterministic models and data shared by the checkpoint / logger / resume tests (R2's tests).

Everything is tiny (a few hundred parameters, a few dozen samples) so a fit takes well under a second.
The module works with torchbolt; `make_classes(lightning.pytorch)` builds the same classes on Lightning
for the interop tests.
"""

from __future__ import annotations

import csv
import os
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def dataset(n: int = 48, features: int = 6, seed: int = 1234) -> TensorDataset:
    """A fixed regression dataset (independent of the global RNG)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    w = torch.randn(features, 1, generator=g)
    y = x @ w + 0.1 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def make_classes(pl: ModuleType) -> tuple[type, type]:
    """(RegressionModel, RegressionData) built on `pl`'s LightningModule / LightningDataModule."""

    class RegressionModel(pl.LightningModule):  # type: ignore[name-defined,misc]
        """Linear → dropout → linear, SGD with momentum and a StepLR: every kind of state a resume must restore."""

        def __init__(self, hidden: int = 8, lr: float = 0.05, dropout: float = 0.1, features: int = 6) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1))
            self.example_input_array = torch.zeros(2, features)
            self.saved_extra: dict[str, Any] | None = None
            self.loaded_extra: Any = None

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self(x), y))

        def test_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("test_loss", nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
            return {"optimizer": opt, "lr_scheduler": sched}

        def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            checkpoint["user_key"] = {"epoch_seen": self.current_epoch}

        def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
            self.loaded_extra = checkpoint.get("user_key")

    class RegressionData(pl.LightningDataModule):  # type: ignore[name-defined,misc]
        """Shuffled training loader, fixed validation loader, a state_dict that round-trips."""

        def __init__(self, batch_size: int = 8, n: int = 48) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.counter = 0

        def train_dataloader(self) -> DataLoader[Any]:
            return DataLoader(dataset(self.hparams.n), batch_size=self.hparams.batch_size, shuffle=True)

        def val_dataloader(self) -> DataLoader[Any]:
            return DataLoader(dataset(16, seed=99), batch_size=8)

        def test_dataloader(self) -> DataLoader[Any]:
            return DataLoader(dataset(16, seed=7), batch_size=8)

        def state_dict(self) -> dict[str, Any]:
            return {"counter": self.counter}

        def load_state_dict(self, state_dict: dict[str, Any]) -> None:
            self.counter = state_dict["counter"]

    return RegressionModel, RegressionData


def torchbolt_classes() -> tuple[type, type]:
    import torchbolt

    return make_classes(torchbolt)


def trainer_kwargs(root: str | os.PathLike[str], **overrides: Any) -> dict[str, Any]:
    """Quiet, deterministic Trainer settings for CPU tests."""
    kwargs: dict[str, Any] = {
        "default_root_dir": os.fspath(root),
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 3,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "log_every_n_steps": 1,
        "num_sanity_val_steps": 0,
        "deterministic": True,
    }
    kwargs.update(overrides)
    return kwargs


def read_metrics_csv(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_state_equal(a: Any, b: Any, where: str = "") -> None:
    """Bit-for-bit equality of nested optimizer / weight states."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), f"tensor differs at {where}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"keys differ at {where}: {set(a) ^ set(b)}"
        for k in a:
            assert_state_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"length differs at {where}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_state_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
