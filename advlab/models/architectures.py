"""Model architectures. Every model takes images in [0, 1] and returns logits.

Any normalisation lives inside the model (``Normalize``), so attacks always work in pixel space.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Normalize", "MadryCNN", "CompactCNN", "PreActResNet18", "build_model", "ARCHITECTURES"]

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


class Normalize(nn.Module):
    """(x - mean) / std per channel; x: (B, C, H, W)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _mnist_cnn(c1: int, c2: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        Normalize(MNIST_MEAN, MNIST_STD),
        nn.Conv2d(1, c1, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 7 * 7, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


class MadryCNN(nn.Sequential):
    """The MNIST CNN of Madry et al. (2018): conv5x5-32, pool, conv5x5-64, pool, fc1024, fc10.

    Input (B, 1, 28, 28) in [0, 1]; output (B, 10) logits. 3.27M parameters.
    """

    def __init__(self):
        super().__init__(*_mnist_cnn(32, 64, 1024))


class CompactCNN(nn.Sequential):
    """The same layout with a 256-unit hidden layer: 0.86M parameters, ~1.5x faster on a CPU.

    Input (B, 1, 28, 28) in [0, 1]; output (B, 10) logits. The model zoo uses it.
    """

    def __init__(self):
        super().__init__(*_mnist_cnn(32, 64, 256))


class _PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 (He et al. 2016) for CIFAR10: (B, 3, 32, 32) in [0, 1] -> (B, 10) logits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.normalize = Normalize(CIFAR10_MEAN, CIFAR10_STD)
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        layers, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            layers += [_PreActBlock(cin, cout, stride), _PreActBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.conv1(self.normalize(x)))
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1).flatten(1)
        return self.linear(out)


ARCHITECTURES = {
    "madry-cnn": MadryCNN,
    "compact-cnn": CompactCNN,
    "preact-resnet18": PreActResNet18,
}


def build_model(name: str) -> nn.Module:
    """A fresh model by architecture name (see ``ARCHITECTURES``)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]()
