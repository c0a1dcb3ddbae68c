"""A real Lightning object handed to torchbolt's Trainer gets an error naming the mix-up and the fix."""

from __future__ import annotations

import pytest

pytest.importorskip("lightning")


def _message(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError) as info:
        call()
    return str(info.value)


def test_lightning_objects_in_a_torchbolt_trainer_name_the_mix_up() -> None:
    import lightning.pytorch as L
    import torchbolt as tb
    from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel
    from torchbolt.demos import BoringModel as TorchboltBoring

    trainer = tb.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    msg = _message(lambda: trainer.fit(TorchboltBoring(), datamodule=BoringDataModule()))
    assert "datamodule is a BoringDataModule built on the real Lightning" in msg
    assert "torchbolt run SCRIPT" in msg and "cannot be iterated" not in msg
    assert "Trainer.fit: model is a BoringModel" in _message(lambda: trainer.fit(BoringModel()))
    assert "train_dataloaders is a BoringDataModule" in _message(lambda: trainer.fit(TorchboltBoring(),
                                                                                     BoringDataModule()))
    for fn in ("validate", "test", "predict"):
        assert f"Trainer.{fn}: model is a BoringModel" in _message(lambda fn=fn: getattr(trainer, fn)(BoringModel()))
    msg = _message(lambda: tb.Trainer(callbacks=[L.callbacks.EarlyStopping("val_loss")]))
    assert "Trainer(callbacks=...): callback is a EarlyStopping built on the real Lightning" in msg


def test_lightning_origin_ignores_torchbolt_and_plain_objects() -> None:
    from torch.utils.data import DataLoader
    from torchbolt.compat.mixup import lightning_origin
    from torchbolt.demos import BoringModel

    assert lightning_origin(BoringModel()) is None
    assert lightning_origin(DataLoader(range(3))) is None
    assert lightning_origin(None) is None
