"""Precision, checkpoint-IO, layer-sync plugins and accelerators, unit by unit (no Trainer)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torchbolt.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator, find_usable_cuda_devices
from torchbolt.plugins import (
    AsyncCheckpointIO,
    DoublePrecision,
    HalfPrecision,
    MixedPrecision,
    Precision,
    TorchCheckpointIO,
    TorchSyncBatchNorm,
)
from torchbolt.plugins.layer_sync import CPUSyncBatchNorm
from torchbolt.plugins.precision import precision_plugin_for
from torchbolt.utilities.exceptions import MisconfigurationException


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))


def _step(plugin: Precision, model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
          poison: bool = False, seen: list[torch.Tensor] | None = None) -> torch.Tensor:
    """One optimizer step the way the loop drives the plugin."""
    losses: list[torch.Tensor] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        with plugin.forward_context():
            loss = model(x).float().pow(2).mean()
        plugin.scale_loss(loss).backward()
        if poison:
            next(model.parameters()).grad[0, 0] = math.inf  # type: ignore[index]
        losses.append(loss.detach())
        return loss

    def after() -> None:  # on_before_optimizer_step + clipping see these gradients
        if seen is not None:
            seen.append(next(model.parameters()).grad.detach().clone())  # type: ignore[union-attr]

    plugin.optimizer_step(opt, closure, after)
    return losses[0]


def test_16_mixed_scaler_skips_inf_step_halves_scale_and_round_trips() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
    x = torch.randn(16, 4)
    before = [p.detach().clone() for p in model.parameters()]
    _step(plugin, model, opt, x, poison=True)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # the step was skipped
    assert plugin.scaler is not None and plugin.scaler.get_scale() == 512.0  # the scale halved
    _step(plugin, model, opt, x)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # a finite step updates

    checkpoint: dict[str, object] = {}
    plugin.on_save_checkpoint(checkpoint)
    assert set(checkpoint) == {"MixedPrecision"} and checkpoint["MixedPrecision"]["scale"] == 512.0  # type: ignore[index]
    fresh = MixedPrecision("16-mixed", "cpu")
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.scaler is not None and fresh.scaler.get_scale() == 512.0
    legacy = MixedPrecision("16-mixed", "cpu")
    legacy.on_load_checkpoint({"native_amp_scaling_state": checkpoint["MixedPrecision"]})
    assert legacy.scaler is not None and legacy.scaler.get_scale() == 512.0


def test_16_mixed_unscales_before_hooks_and_clipping() -> None:
    x = torch.randn(16, 4)
    reference = _model()
    reference(x).pow(2).mean().backward()
    expected = next(reference.parameters()).grad

    model = _model()
    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**12))
    seen: list[torch.Tensor] = []
    _step(plugin, model, torch.optim.SGD(model.parameters(), lr=0.0), x, seen=seen)
    assert expected is not None
    torch.testing.assert_close(seen[0], expected, rtol=2e-2, atol=2e-3)  # unscaled (fp16 forward tolerance)


def test_bf16_mixed_matches_a_hand_written_autocast_loop() -> None:
    x = torch.randn(16, 4)
    plugin_model, hand_model = _model(), _model()
    plugin = MixedPrecision("bf16-mixed", "cpu")
    assert plugin.scaler is None
    opt_a = torch.optim.SGD(plugin_model.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(hand_model.parameters(), lr=0.1)
    for _ in range(3):
        loss_a = _step(plugin, plugin_model, opt_a, x)
        opt_b.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss_b = hand_model(x).float().pow(2).mean()
        loss_b.backward()
        opt_b.step()
        assert loss_a.item() == loss_b.item()
    assert all(torch.equal(a, b) for a, b in zip(plugin_model.parameters(), hand_model.parameters(), strict=True))


def test_mixed_precision_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'16-mixed' or 'bf16-mixed'"):
        MixedPrecision("32-true", "cpu")
    with pytest.raises(ValueError, match="bfloat16 needs no loss scaling"):
        MixedPrecision("bf16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    model = _model()
    lbfgs = torch.optim.LBFGS(model.parameters())
    with pytest.raises(MisconfigurationException, match="LBFGS"):
        MixedPrecision("16-mixed", "cpu").optimizer_step(lbfgs, lambda: None)


@pytest.mark.parametrize(("plugin", "dtype"), [
    (HalfPrecision("bf16-true"), torch.bfloat16), (HalfPrecision("16-true"), torch.float16),
    (DoublePrecision(), torch.float64),
])
def test_true_precisions_convert_module_inputs_and_new_tensors(plugin: Precision, dtype: torch.dtype) -> None:
    model = plugin.convert_module(_model())
    assert all(p.dtype == dtype for p in model.parameters())
    batch = plugin.convert_input({"x": torch.randn(2, 4), "idx": torch.arange(2)})
    assert batch["x"].dtype == dtype and batch["idx"].dtype == torch.int64
    with plugin.forward_context():
        assert torch.zeros(1).dtype == dtype
    assert torch.zeros(1).dtype == torch.float32


def test_factory_and_noop() -> None:
    assert precision_plugin_for("32-true", "cpu").is_noop
    assert isinstance(precision_plugin_for("bf16-mixed", "cpu"), MixedPrecision)
    assert isinstance(precision_plugin_for("64-true", "cpu"), DoublePrecision)
    assert not precision_plugin_for("bf16-true", "cpu").is_noop
    with pytest.raises(ValueError):
        HalfPrecision("32-true")


def test_torch_checkpoint_io_round_trip_and_remove(tmp_path: Path) -> None:
    io = TorchCheckpointIO()
    io.save_checkpoint({"w": torch.ones(2), "epoch": 3}, tmp_path / "a" / "x.ckpt")
    loaded = io.load_checkpoint(tmp_path / "a" / "x.ckpt")
    assert loaded["epoch"] == 3 and torch.equal(loaded["w"], torch.ones(2))
    with pytest.raises(TypeError, match="storage options"):
        io.save_checkpoint({}, tmp_path / "y.ckpt", storage_options={"a": 1})
    io.remove_checkpoint(tmp_path / "a" / "x.ckpt")
    assert not (tmp_path / "a" / "x.ckpt").exists()


def test_async_checkpoint_io_snapshots_tensors_and_reports_errors(tmp_path: Path) -> None:
    io = AsyncCheckpointIO()
    weights = torch.zeros(3)
    io.save_checkpoint({"w": weights}, tmp_path / "a.ckpt")
    weights.add_(5)  # the next optimizer step must not change what is being written
    io.teardown()
    assert torch.equal(TorchCheckpointIO().load_checkpoint(tmp_path / "a.ckpt")["w"], torch.zeros(3))

    class Broken(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, object], path: object, storage_options: object = None) -> None:
            raise OSError("disk full")

    failing = AsyncCheckpointIO(Broken())
    failing.save_checkpoint({"w": weights}, tmp_path / "b.ckpt")
    with pytest.raises(OSError, match="disk full"):
        failing.teardown()


def test_sync_batchnorm_apply_and_revert() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.BatchNorm2d(2)))
    synced = TorchSyncBatchNorm().apply(model)
    # layers on the CPU become CPUSyncBatchNorm (DDP refuses nn.SyncBatchNorm on CPU); plain batch norm's keys
    assert sum(isinstance(m, CPUSyncBatchNorm) for m in synced.modules()) == 2
    assert list(synced.state_dict()) == list(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2),
                                                           nn.Sequential(nn.BatchNorm2d(2))).state_dict())
    reverted = TorchSyncBatchNorm().revert(synced)
    assert not any(isinstance(m, (nn.SyncBatchNorm, CPUSyncBatchNorm)) for m in reverted.modules())
    assert reverted(torch.randn(2, 1, 5, 5)).shape == (2, 2, 3, 3)


def test_accelerators_on_this_machine() -> None:
    cpu = CPUAccelerator()
    assert cpu.is_available() and cpu.auto_device_count() == 1
    assert cpu.get_parallel_devices(2) == [torch.device("cpu")] * 2
    with pytest.raises(MisconfigurationException, match="accelerator='cuda'"):
        cpu.setup_device(torch.device("meta"))
    assert CUDAAccelerator.get_parallel_devices([0, 1]) == [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert MPSAccelerator.auto_device_count() == 1
    if not torch.cuda.is_available():
        assert not CUDAAccelerator.is_available()
        assert find_usable_cuda_devices(-1) == []
        with pytest.raises(MisconfigurationException, match="found no CUDA device"):
            find_usable_cuda_devices(1)
