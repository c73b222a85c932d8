"""Tiny, deterministic models and one-step attacks shared by the exercises and their graders.

Everything here is small on purpose: an exercise notebook trains one of these nets on a few
thousand MNIST images in seconds, and the grader rebuilds the exact same weights from a seed.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


class TinyMLP(nn.Module):
    """784 -> 64 -> 10 fully connected net with a ReLU; inputs (N, 1, 28, 28) in [0, 1]."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10)."""
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class TinyCNN(nn.Module):
    """Two strided convolutions and a linear layer; about 5k parameters."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, stride=2)
        self.conv2 = nn.Conv2d(8, 16, 5, stride=2)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 10)."""
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        return self.fc(h.flatten(1))


class Rounded(nn.Module):
    """A gradient-masking "defence": round every pixel to 0 or 1, then classify with ``base``.

    ``torch.round`` has a zero derivative, so the input gradient of this model is exactly zero
    everywhere and gradient-based attacks stall, although the model is no more robust.
    """

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``base`` on the rounded image."""
        return self.base(torch.round(x))


ARCHS = {
    "tiny_mlp": TinyMLP,
    "tiny_cnn": TinyCNN,
    "rounded_mlp": lambda: Rounded(TinyMLP()),
    "rounded_cnn": lambda: Rounded(TinyCNN()),
}


def rounded(base: nn.Module) -> Rounded:
    """The gradient-masked version of ``base`` (sharing its weights)."""
    return Rounded(base).eval()


def make_net(arch: str = "tiny_mlp", seed: int = 0) -> nn.Module:
    """A freshly initialised net whose weights depend only on ``seed`` (global RNG untouched)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {sorted(ARCHS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ARCHS[arch]()
    return net.eval()


def train_plain(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 2,
    lr: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Plain (non-adversarial) SGD training, deterministic given ``seed``; returns ``model``."""
    from ..train.basic import fit

    def sgd(params):
        return torch.optim.SGD(params, lr=lr, momentum=0.9)

    return fit(model, x, y, epochs=epochs, batch_size=batch_size, seed=seed, optimizer=sgd)


@functools.lru_cache(maxsize=4)
def _pretrained_state(arch: str, n_train: int, epochs: int, seed: int) -> dict:
    from .data import mnist_subset

    x, y = mnist_subset(n_train, train=True)
    net = train_plain(make_net(arch, seed), x, y, epochs=epochs, seed=seed)
    return {k: v.clone() for k, v in net.state_dict().items()}


def pretrained_tiny(
    arch: str = "tiny_mlp", n_train: int = 4000, epochs: int = 2, seed: int = 0
) -> nn.Module:
    """A tiny net trained on the first ``n_train`` MNIST training images (about 95% accurate).

    Deterministic: the same arguments give the same weights, so a grader can rebuild it.
    """
    net = make_net(arch, seed)
    net.load_state_dict(_pretrained_state(arch, n_train, epochs, seed))
    return net.eval()


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def linf_fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One l_inf gradient-sign step of size ``eps``, clipped to [0, 1]."""
    return (x + eps * _input_grad(model, x, y).sign()).clamp(0, 1).detach()


def l2_fgm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One l_2 step of length ``eps`` along the normalised gradient, clipped to [0, 1].

    x (N, C, H, W) in [0, 1], y (N,); the direction is the l_2 threat's steepest ascent
    (``advlab.threats.L2.direction``: grad / ||grad||_2 per example, 0 for a zero gradient),
    which does not depend on the threat's budget.
    """
    from ..threats import L2

    return (x + eps * L2().direction(_input_grad(model, x, y))).clamp(0, 1).detach()


ATTACKS = {"linf_fgsm": linf_fgsm, "l2_fgm": l2_fgm}


def fgsm_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float):
    """A training batch made of l_inf FGSM examples: ``(x_adv, y)``."""
    return linf_fgsm(model, x, y, eps), y


def clean_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The clean batch itself: ``(x, y)`` (standard training)."""
    return x, y


ATTACKS.update(fgsm_batch=fgsm_batch, clean_batch=clean_batch)
