"""Small ready-made models and datasets at Lightning's `demos` paths, for examples, tests and bug reports.

`BoringModel` / `BoringDataModule` / `DemoModel` / `RandomDataset` (random data, no download),
`Transformer` / `LightningTransformer` / `WikiText2`, `SimpleLSTM` / `LightningLSTM`, `MNIST` /
`MNISTDataModule`. Datasets that Lightning downloads are downloaded the same way; offline they raise
an error that says where to put the files. Imported lazily: `import torchbolt.demos` imports no torch.
"""

from __future__ import annotations

from torchbolt._lazy import lazy_getattr

_LAZY = {
    "BoringModel": "boring_classes", "BoringDataModule": "boring_classes", "DemoModel": "boring_classes",
    "ManualOptimBoringModel": "boring_classes", "RandomDataset": "boring_classes",
    "RandomDictDataset": "boring_classes", "RandomIterableDataset": "boring_classes",
    "RandomIterableDatasetWithLen": "boring_classes", "BoringDataModuleNoLen": "boring_classes",
    "IterableBoringDataModule": "boring_classes", "Net": "boring_classes",
    "Transformer": "transformer", "LightningTransformer": "transformer", "WikiText2": "transformer",
    "SimpleLSTM": "lstm", "LightningLSTM": "lstm", "SequenceSampler": "lstm",
    "MNIST": "mnist_datamodule", "MNISTDataModule": "mnist_datamodule",
    "cli_lightning_logo": "logo",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_getattr(__name__, {name: f"{__name__}.{module}" for name, module in _LAZY.items()}, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
