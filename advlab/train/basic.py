"""A short, plain training loop: standard training, or training on an attack's outputs."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fit"]


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float = 1e-3,
    attack: Callable | None = None,
    seed: int = 0,
    optimizer: Callable | None = None,
) -> nn.Module:
    """Train ``model`` with Adam on (x, y) tensors (x (N, C, H, W) in [0, 1], y (N,) int64).

    ``optimizer``: a function ``parameters -> torch.optim.Optimizer`` instead of Adam(lr).

    With ``attack`` (a callable ``attack(model, x, y)`` returning an ``AttackResult``, e.g.
    ``PGD(Linf(0.3), steps=10)``), each batch is replaced by its adversarial version (Madry et al.).
    Shuffling uses a local generator seeded with ``seed``; the global RNG is left alone.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # the attack's random starts: one running generator for the whole run (an attack object
    # called without one would seed its own, and every batch would start from the same noise)
    agen = torch.Generator(device=x.device).manual_seed(seed + 1)
    pass_gen = attack is not None and _takes_generator(attack)
    params = model.parameters()
    opt = optimizer(params) if optimizer is not None else torch.optim.Adam(params, lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen).to(x.device)
        for i in range(0, x.shape[0], batch_size):
            idx = order[i:i + batch_size]
            xb, yb = x[idx], y[idx]
            if attack is not None:
                res = attack(model, xb, yb, generator=agen) if pass_gen else attack(model, xb, yb)
                xb = res.x_adv
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


def _takes_generator(attack) -> bool:
    """Whether ``attack`` accepts a ``generator`` keyword (advlab's attack objects do)."""
    try:
        params = inspect.signature(attack).parameters
    except (TypeError, ValueError):
        return False
    return "generator" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
