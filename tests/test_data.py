"""Data loading: where files are looked for, the error when they are missing, and real MNIST."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from advlab import data

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_missing_folder_names_the_folder_and_the_variable(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_mnist(root=missing, download=False)
    msg = str(info.value)
    assert str(missing / "MNIST") in msg and "ADVLAB_DATA" in msg and "download=False" in msg
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(data.DataNotFoundError, match="cifar-10-batches-py"):
        data.load_cifar10(root=missing, download=False)


def test_missing_folder_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVLAB_DATA", str(tmp_path / "empty"))
    assert data.data_root() == tmp_path / "empty"
    with pytest.raises(data.DataNotFoundError, match="ADVLAB_DATA") as info:
        data.mnist_tensors(10, download=False)
    assert str(tmp_path / "empty" / "MNIST") in str(info.value)
    # an empty MNIST folder is as missing as no folder
    (tmp_path / "empty" / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(data.DataNotFoundError):
        data.load_mnist(download=False)


def test_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVLAB_DATA", str(tmp_path / "env"))
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_root() == tmp_path / "env"
    monkeypatch.delenv("ADVLAB_DATA")
    assert data.data_root() == Path.home() / ".advlab" / "data"


def test_mnist_test_split():
    x, y = data.mnist_tensors(None, train=False, download=False)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    assert torch.bincount(y, minlength=10).tolist() == TEST_COUNTS
    assert x.is_contiguous()


def test_mnist_training_split():
    x, y = data.mnist_tensors(None, train=True, download=False)
    assert x.shape == (60000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).tolist() == TRAIN_COUNTS
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x.mean().item() == pytest.approx(0.1307, abs=5e-5)
    assert x.std().item() == pytest.approx(0.3081, abs=5e-5)
    # the dataset view gives the same images as the tensors
    ds = data.load_dataset("MNIST", train=True, download=False)
    img, label = ds[7]
    assert torch.equal(img, x[7]) and label == y[7].item()


def test_first_n_and_bad_arguments():
    x, y = data.mnist_tensors(5, download=False)
    full_x, full_y = data.mnist_tensors(20, download=False)
    assert torch.equal(x, full_x[:5]) and torch.equal(y, full_y[:5])
    for n in (0, -3, 10001):
        with pytest.raises(ValueError, match="n must be"):
            data.mnist_tensors(n, download=False)
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_dataset("imagenet")


def test_fixture_data_comes_from_advlab_data(mnist_test):
    assert os.environ.get("ADVLAB_DATA")
    x, y = mnist_test
    assert x.shape == (1000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).sum() == 1000


def test_a_failed_download_leaves_no_empty_folder_behind(tmp_path, monkeypatch):
    """A real download attempt that fails (a local port where nothing listens, as offline)."""
    from torchvision.datasets import MNIST

    monkeypatch.setattr(MNIST, "mirrors", ["http://127.0.0.1:9/"])
    root = tmp_path / "data"
    with pytest.raises(data.DataNotFoundError) as info:
        data.load_mnist(root=root)
    msg = str(info.value)
    assert "the download failed" in msg and "\n" not in msg  # one line, for the CLI
    assert not root.exists()  # no empty data/MNIST/raw/
    (root / "MNIST").mkdir(parents=True)  # a folder that was there before stays, empty or not
    with pytest.raises(data.DataNotFoundError):
        data.load_mnist(root=root)
    assert (root / "MNIST").is_dir() and not (root / "MNIST" / "raw").exists()
