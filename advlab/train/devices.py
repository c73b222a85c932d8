"""Where a training run runs: the device, the data-parallel process group and a hardware line.

- :func:`resolve_device`: the device asked for, else the GPU when present, else the CPU.
- :class:`Dist`: rank, world size and the few collective operations the engine needs; a no-op
  outside ``torchrun`` (gloo on CPU, nccl on GPU).
- :func:`hardware`: the line ``train.log`` records about the machine.
"""

from __future__ import annotations

import os
import platform

import torch
from torch import nn

__all__ = ["Dist", "hardware", "resolve_device"]


def resolve_device(device: str | None = None) -> torch.device:
    """``device`` if given, else the GPU when present, else the CPU (under torchrun: LOCAL_RANK)."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


class Dist:
    """Rank, world size and helpers; a no-op outside ``torchrun``."""

    def __init__(self, device: torch.device):
        import torch.distributed as dist

        self.dist = dist
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owned = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owned = True
        if dist.is_available() and dist.is_initialized():
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    @property
    def active(self) -> bool:
        return self.world > 1

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def sum(self, values: list[float], device) -> list[float]:
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        self.dist.all_reduce(t)
        return t.tolist()

    def barrier(self):
        if self.active:
            self.dist.barrier()

    def close(self):
        if self.owned:
            self.dist.destroy_process_group()


def hardware(dev: torch.device) -> str:
    """The GPU's name, or the CPU, its thread count and the torch version."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return (f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
            f"threads, torch {torch.__version__}")
