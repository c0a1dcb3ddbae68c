import lightning as L
import pytest


def test_bad_accelerator_is_refused():
    with pytest.raises(ValueError, match="gpuu"):
        L.Trainer(accelerator="gpuu")


def test_removed_strategy_is_refused():
    pytest.raises(ValueError, L.Trainer, strategy="dp")
    with pytest.raises(TypeError):
        L.Trainer(gpus=2)


def test_outside():
    return L.Trainer(accelerator="gpuu", precision=16)
