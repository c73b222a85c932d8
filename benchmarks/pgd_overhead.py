"""PGD's overhead over the gradient computations it cannot avoid.

ratio = time(PGD with K steps) / (K x time(one forward + backward with respect to the input)),
same model, batch and threads, measured in one run with the two interleaved (the machine is
noisy, so only the ratio is meaningful). Target: <= 1.03 for the Madry CNN at batch 256 on a CPU.

    python benchmarks/pgd_overhead.py [--batch 256] [--steps 20] [--repeats 5] [--models madry-cnn]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from advlab.attacks import pgd
from advlab.device import pick_device
from advlab.models import CompactCNN, MadryCNN
from advlab.threats import L1, L2, Linf


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def one_grad(model, x, y):
    """The irreducible work of one attack step: forward, backward to the input."""
    xr = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
    return g


def measure(model, x, y, threat, steps, repeats, device):
    gen = torch.Generator(device=device).manual_seed(0)
    for p in model.parameters():
        p.requires_grad_(False)
    one_grad(model, x, y)
    pgd(model, x, y, threat, steps=2, generator=gen)  # warm-up
    ratios = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            one_grad(model, x, y)
        _sync(device)
        t1 = time.perf_counter()
        pgd(model, x, y, threat, steps=steps, generator=gen)
        _sync(device)
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
    return statistics.median(ratios), min(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default=None)
    ap.add_argument("--models", default="madry-cnn,compact-cnn")
    args = ap.parse_args()
    device = pick_device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=gen).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(device)
    print(f"device {device}, batch {args.batch}, PGD-{args.steps}, threads "
          f"{torch.get_num_threads()}, median (min) of {args.repeats} interleaved repeats")
    print(f"{'model':<12}{'layout':<15}{'threat':<8}{'ratio':>8}")
    chosen = args.models.split(",")
    for name, cls in [("madry-cnn", MadryCNN), ("compact-cnn", CompactCNN)]:
        if name not in chosen:
            continue
        for layout in (torch.contiguous_format, torch.channels_last):
            model = cls().to(device).eval().to(memory_format=layout)
            xs = x.contiguous(memory_format=layout)
            for threat in (Linf(0.3), L2(2.0), L1(10.0)):
                med, low = measure(model, xs, y, threat, args.steps, args.repeats, device)
                lay = "channels_last" if layout == torch.channels_last else "contiguous"
                print(f"{name:<12}{lay:<15}{threat.name:<8}{med:8.3f} ({low:.3f})")


if __name__ == "__main__":
    main()
