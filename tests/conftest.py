"""Shared fixtures: the real MNIST (from ADVLAB_DATA, default ../shared/data) and small models.

Session-scoped so the whole suite trains its standard model once (a few seconds on 2 cores).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("ADVLAB_DATA", str(REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def mnist_test():
    """The first 1000 MNIST test images: x (1000, 1, 28, 28) in [0, 1], y (1000,)."""
    from advlab.data import mnist_tensors

    return mnist_tensors(1000, train=False)


@pytest.fixture(scope="session")
def mnist_train_small():
    """The first 10000 MNIST training images."""
    from advlab.data import mnist_tensors

    return mnist_tensors(10000, train=True)


@pytest.fixture(scope="session")
def standard_model(mnist_train_small):
    """A CompactCNN trained for one epoch on 10k images (~96% test accuracy), in eval mode."""
    from advlab.models import CompactCNN
    from advlab.train.basic import fit

    torch.manual_seed(0)
    model = CompactCNN()
    x, y = mnist_train_small
    return fit(model, x, y, epochs=1, seed=0).eval()
