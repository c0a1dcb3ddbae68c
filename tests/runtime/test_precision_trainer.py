"""Precision and plugins through the Trainer (one CPU process): AMP parity, the 16-mixed GradScaler path,
checkpointed scaler state, plugins= support and the hardware properties."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torchbolt as tb
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchbolt.accelerators import CPUAccelerator
from torchbolt.plugins import AsyncCheckpointIO, MixedPrecision, Precision, TorchCheckpointIO
from torchbolt.strategies import SingleDeviceStrategy
from torchbolt.utilities.exceptions import TrainerArgumentError

QUIET: dict[str, Any] = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False,
                         "enable_checkpointing": False}


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(3)
    return DataLoader(TensorDataset(torch.randn(24, 6, generator=g), torch.randn(24, 1, generator=g)), batch_size=4)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 1))


class Model(tb.LightningModule):
    def __init__(self, poison_step: int = -1) -> None:
        super().__init__()
        self.net = _net()
        self.poison_step = poison_step
        self.losses: list[float] = []
        self.grad_max_seen: list[float] = []
        self.scales: list[float] = []
        self.weights_before: list[torch.Tensor] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.weights_before.append(self.net[0].weight.detach().clone())
        loss = nn.functional.mse_loss(self.net(x).float(), y)
        self.losses.append(loss.item())
        return loss

    def on_after_backward(self) -> None:
        if self.global_step == self.poison_step:
            self.net[0].weight.grad[0, 0] = math.inf  # type: ignore[index]

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        grads = [p.grad.abs().max().item() for p in self.parameters() if p.grad is not None]
        self.grad_max_seen.append(max(grads))
        if self.trainer.scaler is not None:
            self.scales.append(self.trainer.scaler.get_scale())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)

    def train_dataloader(self) -> DataLoader:
        return _data()


def test_bf16_mixed_matches_a_hand_written_autocast_loop() -> None:
    model = Model()
    trainer = tb.Trainer(max_epochs=1, precision="bf16-mixed", **QUIET)
    trainer.fit(model)
    assert trainer.precision == "bf16-mixed" and isinstance(trainer.precision_plugin, MixedPrecision)

    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    hand: list[float] = []
    for x, y in _data():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.mse_loss(net(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hand.append(loss.item())
    assert model.losses == hand
    assert all(torch.equal(a, b) for a, b in zip(model.net.parameters(), net.parameters(), strict=True))


def test_16_mixed_scaler_skips_the_inf_step_halves_the_scale_and_round_trips(tmp_path: Path) -> None:
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=1000)
    model = Model(poison_step=2)
    trainer = tb.Trainer(max_epochs=1, plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)], **QUIET)
    trainer.fit(model)
    assert trainer.precision == "16-mixed" and trainer.scaler is scaler
    # The poisoned step (batch 2) changed nothing: the weights before batch 3 equal those before batch 2.
    assert torch.equal(model.weights_before[2], model.weights_before[3])
    assert not torch.equal(model.weights_before[1], model.weights_before[2])
    assert model.scales[:4] == [1024.0, 1024.0, 1024.0, 512.0]  # halved after the inf step
    assert trainer.global_step == 6  # as in Lightning, a step the scaler skipped still counts
    # Gradients reached on_before_optimizer_step unscaled (the loss scale is 1024).
    finite = [g for g in model.grad_max_seen if math.isfinite(g)]
    assert max(finite) < 50

    path = tmp_path / "amp.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)
    assert saved["MixedPrecision"]["scale"] == 512.0

    resumed = tb.Trainer(max_epochs=2, plugins=[MixedPrecision("16-mixed", "cpu")], **QUIET)
    model2 = Model()
    resumed.fit(model2, ckpt_path=path)
    assert model2.scales[0] == 512.0  # the scaler state came back from the checkpoint


def test_16_mixed_on_cpu_follows_lightnings_rule() -> None:
    with pytest.warns(UserWarning, match="bf16-mixed"):
        trainer = tb.Trainer(precision="16-mixed", **QUIET)
    assert trainer.precision == "bf16-mixed" and trainer.scaler is None


def test_amp_backend_apex_maps_to_native_amp_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="NVIDIA Apex is not used"):
        trainer = tb.Trainer(amp_backend="apex", amp_level="O2", precision="bf16-mixed", **QUIET)
    assert trainer.precision == "bf16-mixed"


def test_plugins_are_used_by_the_trainer(tmp_path: Path) -> None:
    io = AsyncCheckpointIO()
    model = Model()
    trainer = tb.Trainer(max_epochs=1, plugins=[io], **QUIET)
    assert trainer.strategy.checkpoint_io is io
    trainer.fit(model)
    trainer.save_checkpoint(tmp_path / "async.ckpt")
    trainer.strategy.teardown()  # waits for the background write
    assert TorchCheckpointIO().load_checkpoint(tmp_path / "async.ckpt")["global_step"] == 6
    with pytest.raises(TrainerArgumentError, match="Received both `precision='64-true'`"):
        tb.Trainer(precision="64-true", plugins=[Precision()])
    with pytest.raises(TrainerArgumentError, match="not a plugin"):
        tb.Trainer(plugins=[object()])


class _SlowIO(TorchCheckpointIO):
    """Writes after a pause: a background write is still running when fit's last step ends."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        time.sleep(0.5)
        super().save_checkpoint(checkpoint, path, storage_options)


def test_fit_returns_after_its_asynchronous_checkpoint_writes(tmp_path: Path) -> None:
    """The strategy's teardown ends every entry point (as Lightning): AsyncCheckpointIO's writes are on disk
    when fit returns, and a background write's error is raised by fit itself."""
    io = AsyncCheckpointIO(_SlowIO())
    checkpoint = tb.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)
    quiet = {k: v for k, v in QUIET.items() if k != "enable_checkpointing"}
    trainer = tb.Trainer(max_epochs=1, plugins=[io], callbacks=[checkpoint], enable_checkpointing=True, **quiet)
    trainer.fit(Model())
    assert TorchCheckpointIO().load_checkpoint(tmp_path / "last.ckpt")["global_step"] == 6

    class Failing(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
            time.sleep(0.2)
            raise OSError("disk full")

    trainer = tb.Trainer(max_epochs=1, plugins=[AsyncCheckpointIO(Failing())],
                         callbacks=[tb.callbacks.ModelCheckpoint(dirpath=tmp_path / "b")], enable_checkpointing=True,
                         **quiet)
    with pytest.raises(OSError, match="disk full"):
        trainer.fit(Model())


def test_hardware_properties_on_one_cpu() -> None:
    trainer = tb.Trainer(**QUIET)
    assert isinstance(trainer.accelerator, CPUAccelerator)
    assert isinstance(trainer.strategy, SingleDeviceStrategy)
    assert (trainer.global_rank, trainer.local_rank, trainer.node_rank, trainer.world_size) == (0, 0, 0, 1)
    assert trainer.is_global_zero and trainer.num_nodes == 1 and trainer.num_devices == 1
    assert trainer.device_ids == [0] and trainer.precision == "32-true" and trainer.scaler is None
    assert trainer.strategy.root_device == torch.device("cpu")
    assert trainer.strategy.reduce(torch.tensor(2.0)) == 2.0 and trainer.strategy.broadcast("x") == "x"
