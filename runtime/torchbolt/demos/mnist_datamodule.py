"""MNIST for examples: `MNIST` (a Dataset of 1x28x28 float images and int labels) and `MNISTDataModule`
(55k/5k/10k train/val/test split). Uses torchvision's MNIST when torchvision is installed, else the
tensors Lightning hosts; both are downloaded on first use, and offline a RuntimeError says where the
files go.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, random_split

from torchbolt.core.datamodule import LightningDataModule
from torchbolt.demos._download import fetch
from torchbolt.utilities.imports import _TORCHVISION_AVAILABLE

__all__ = ["MNIST", "MNISTDataModule"]

DATASETS_PATH = "./data"
HOSTED = ("https://pl-public-data.s3.amazonaws.com/MNIST/processed/training.pt",
          "https://pl-public-data.s3.amazonaws.com/MNIST/processed/test.pt")


class _HostedMNIST(Dataset[tuple[Tensor, int]]):
    """MNIST from the preprocessed tensors files (`training.pt`, `test.pt`) under root/MNIST/complete."""

    def __init__(self, root: str, train: bool = True, normalize: tuple[float, float] | None = (0.1307, 0.3081),
                 download: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self.root = root
        self.train = train
        self.normalize = normalize
        folder = os.path.join(root, "MNIST", "complete")
        files = [os.path.join(folder, os.path.basename(url)) for url in HOSTED]
        if download:
            for url, path in zip(HOSTED, files, strict=True):
                if not os.path.isfile(path):
                    fetch(url, path, "MNIST")
        path = files[0] if train else files[1]
        if not os.path.isfile(path):
            raise RuntimeError(f"MNIST: {path} does not exist; pass download=True or put the file there")
        self.data, self.targets = torch.load(path, weights_only=True)

    def __getitem__(self, idx: int) -> tuple[Tensor, int]:
        img = self.data[idx].float().unsqueeze(0)
        if self.normalize is not None and len(self.normalize) == 2:
            mean, std = self.normalize
            img = (img - mean) / std
        return img, int(self.targets[idx])

    def __len__(self) -> int:
        return len(self.data)


def MNIST(*args: Any, **kwargs: Any) -> Dataset[Any]:  # noqa: N802 - a class-like factory, as in Lightning
    """torchvision's MNIST(root, train=..., download=..., transform=...) when available (and not disabled
    by PL_USE_MOCKED_MNIST), else the hosted tensors."""
    if _TORCHVISION_AVAILABLE and not os.getenv("PL_USE_MOCKED_MNIST"):
        from torchvision.datasets import MNIST as TorchvisionMNIST

        try:
            return TorchvisionMNIST(*args, **kwargs)  # type: ignore[no-any-return]
        except RuntimeError as err:
            raise RuntimeError(f"MNIST (torchvision): {err}. Offline, put the MNIST files under the root folder "
                               "or set PL_USE_MOCKED_MNIST=1 to use the hosted tensors.") from None
    kwargs.pop("transform", None)
    return _HostedMNIST(*args, **kwargs)


class MNISTDataModule(LightningDataModule):
    """MNIST with the last `val_split` training images (fixed random split, seed 42) for validation."""

    name = "mnist"

    def __init__(self, data_dir: str = DATASETS_PATH, val_split: int = 5000, num_workers: int = 16,
                 normalize: bool = False, seed: int = 42, batch_size: int = 32) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.val_split = val_split
        self.num_workers = 0 if os.name == "nt" else num_workers  # worker processes are slow to start on Windows
        self.normalize = normalize
        self.seed = seed
        self.batch_size = batch_size

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def default_transforms(self) -> Callable[..., Any] | None:
        if not _TORCHVISION_AVAILABLE:
            return None
        from torchvision import transforms

        if self.normalize:
            return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=(0.5,), std=(0.5,))])
        return transforms.ToTensor()

    def _extra(self) -> dict[str, Any]:
        transform = self.default_transforms
        return {"transform": transform} if transform else {}

    def prepare_data(self) -> None:
        MNIST(self.data_dir, train=True, download=True)
        MNIST(self.data_dir, train=False, download=True)

    def setup(self, stage: str) -> None:
        dataset = MNIST(self.data_dir, train=True, download=False, **self._extra())
        total = len(dataset)  # type: ignore[arg-type]
        self.dataset_train, self.dataset_val = random_split(
            dataset, [total - self.val_split, self.val_split], generator=torch.Generator().manual_seed(42))

    def _loader(self, dataset: Dataset[Any], shuffle: bool) -> DataLoader[Any]:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          drop_last=True, pin_memory=True)

    def train_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.dataset_train, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        return self._loader(self.dataset_val, shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        return self._loader(MNIST(self.data_dir, train=False, download=False, **self._extra()), shuffle=False)
