"""MNIST and CIFAR10 through torchvision, with one rule for where the files live.

The root is, in order: the ``root`` argument, the ``ADVLAB_DATA`` environment variable, or
``~/.advlab/data``. Real users download through torchvision; offline machines point
``ADVLAB_DATA`` at a folder that already holds the files (e.g. ``MNIST/raw/``).
All images come out as float32 tensors in [0, 1]; no normalisation here (models do their own).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch.utils.data import Dataset

__all__ = [
    "DataNotFoundError",
    "data_root",
    "load_mnist",
    "load_cifar10",
    "load_dataset",
    "mnist_tensors",
    "dataset_tensors",
]

ENV_VAR = "ADVLAB_DATA"


class DataNotFoundError(FileNotFoundError):
    """The data set is neither on disk nor downloadable."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) the data sets."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".advlab" / "data"


def _load(cls, name: str, folder: str, train: bool, root, download: bool) -> Dataset:
    from torchvision import transforms

    where = data_root(root)
    tf = transforms.ToTensor()
    try:
        return cls(root=str(where), train=train, download=False, transform=tf)
    except RuntimeError as first:
        if not download:
            raise _missing(name, where / folder, "download=False was given") from first
    created = _first_missing(where / folder / "raw")
    try:
        return cls(root=str(where), train=train, download=True, transform=tf)
    except Exception as err:  # network errors come in many types
        if created is not None:  # what the failed download made: nothing half-made stays
            shutil.rmtree(created, ignore_errors=True)
        why = " ".join(str(err).split())  # torchvision's message spans lines: one line here
        raise _missing(name, where / folder, f"the download failed ({why})") from err


def _first_missing(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that does not exist yet (None: all do)."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def _missing(name: str, looked: Path, why: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{name} was not found in {looked} and {why}. Point advlab at a copy with "
        f"load_{name.lower()}(root=...) or the {ENV_VAR} environment variable (the folder that "
        f"contains '{looked.name}/'), or allow the download on a machine with network access."
    )


def load_mnist(train: bool = False, root=None, download: bool = True) -> Dataset:
    """MNIST as a torchvision dataset of ((1, 28, 28) float in [0, 1], int label)."""
    from torchvision.datasets import MNIST

    return _load(MNIST, "MNIST", "MNIST", train, root, download)


def load_cifar10(train: bool = False, root=None, download: bool = True) -> Dataset:
    """CIFAR10 as a torchvision dataset of ((3, 32, 32) float in [0, 1], int label)."""
    from torchvision.datasets import CIFAR10

    return _load(CIFAR10, "CIFAR10", "cifar-10-batches-py", train, root, download)


def load_dataset(name: str, train: bool = False, root=None, download: bool = True) -> Dataset:
    """``name`` is "mnist" or "cifar10" (any case)."""
    loaders = {"mnist": load_mnist, "cifar10": load_cifar10}
    key = name.lower()
    if key not in loaders:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(loaders)}")
    return loaders[key](train=train, root=root, download=download)


def dataset_tensors(
    name: str, n: int | None = None, train: bool = False, root=None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images (all if None): ``x`` (N, C, H, W) float32 in [0, 1], ``y`` (N,)."""
    ds = load_dataset(name, train=train, root=root, download=download)
    total = len(ds)
    n = total if n is None else n
    if not 0 < n <= total:
        raise ValueError(f"n must be in 1..{total} for this split, got {n}")
    data = getattr(ds, "data", None)
    if isinstance(data, torch.Tensor):  # MNIST keeps uint8 (N, H, W)
        x = data[:n].to(torch.float32).div_(255).unsqueeze(1)
    else:  # CIFAR10 keeps a numpy uint8 (N, H, W, C)
        x = torch.as_tensor(data[:n]).permute(0, 3, 1, 2).to(torch.float32).div_(255)
    y = torch.as_tensor(ds.targets[:n], dtype=torch.int64)
    return x.contiguous(), y


def mnist_tensors(
    n: int | None = None, train: bool = False, root=None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` MNIST images: ``x`` (N, 1, 28, 28) float32 in [0, 1], ``y`` (N,) int64."""
    return dataset_tensors("mnist", n=n, train=train, root=root, download=download)
