"""Where to run: the GPU when present, the CPU otherwise."""

from __future__ import annotations

import copy

import torch

__all__ = ["pick_device", "fast_on_cpu"]


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` ("cpu", "cuda", "cuda:1", "mps"), else CUDA, then Apple MPS, then the CPU."""
    if requested is not None:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA GPU is available; use device='cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def fast_on_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """A channels_last copy of ``model`` when its weights are on the CPU (faster convolutions
    there, same numbers up to float rounding: ``benchmarks/memory_format.py``), else ``model``
    itself. The caller's model is unchanged."""
    if next(model.parameters()).device.type != "cpu":
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last)
