"""Tests in the style of Lightning's own: BoringModel subclasses overriding a few hooks."""

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.demos.boring_classes import BoringModel


class CountingModel(BoringModel):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def training_step(self, batch, batch_idx):
        self.steps += 1
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize("max_steps", [1, 3])
def test_steps(tmp_path, max_steps):
    model = CountingModel()
    trainer = Trainer(default_root_dir=tmp_path, max_steps=max_steps, logger=False, enable_checkpointing=False)
    trainer.fit(model)
    assert model.steps == max_steps


def test_bad_model_raises(tmp_path):
    class NoOptimizer(BoringModel):
        def configure_optimizers(self):
            return None

    with pytest.raises(Exception):
        Trainer(default_root_dir=tmp_path, fast_dev_run=True).fit(NoOptimizer())


def test_manual(tmp_path):
    class Manual(BoringModel):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.step(batch)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

    Trainer(default_root_dir=tmp_path, fast_dev_run=True).fit(Manual())
    assert torch.tensor(1.0).item() == 1.0
