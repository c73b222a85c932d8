"""A run's weights and random streams: seeded initialisation, seeded generators, safetensors.

Reproducibility without the global RNG: the model is initialised from ``seed`` inside a forked
RNG, and every shuffle and random start draws from a generator seeded by (seed, epoch, process).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..models import build_model

__all__ = ["init_model", "save_weights", "seeded_generator"]


def init_model(arch: str, seed: int) -> nn.Module:
    """A fresh model initialised from ``seed`` without touching the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch)


def seeded_generator(seed: int, *keys: int, device="cpu") -> torch.Generator:
    """A generator on ``device`` seeded from ``seed`` and ``keys`` (e.g. epoch, process)."""
    s = seed
    for k in keys:
        s = (s * 1_000_003 + k + 1) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(s)


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """The model's state dict as safetensors (contiguous fp32 copies), with string metadata."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})
