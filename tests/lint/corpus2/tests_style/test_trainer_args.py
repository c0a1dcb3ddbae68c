import pytest
from lightning.pytorch import Trainer


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed", "32-true", "64-true"])
def test_precision_values(precision):
    Trainer(precision=precision, accelerator="cpu", logger=False)


@pytest.mark.parametrize("limit", [0.5, 1.0, 10])
def test_limits(limit):
    Trainer(limit_train_batches=limit, limit_val_batches=limit, accelerator="cpu", logger=False)
