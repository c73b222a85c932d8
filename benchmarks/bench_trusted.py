"""Cost of the trusted ("strong") evaluation on MNIST: time per forward and per gradient step.

    ADVLAB_DATA=/work/shared/data python3 benchmarks/bench_trusted.py [n_images] [threads]

Measures, for a CompactCNN, the seconds per image of one forward pass (a Square query) and of one
forward + backward pass (a PGD/APGD step), then prints the worst-case cost of
``presets.trusted_attacks("mnist")`` per l_p threat on 1000 images: every attack runs on every
example (a model robust to all of them). On a non-robust model, attacks after the first only
see the few survivors, so the cost is close to the first PGD's.
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from advlab import presets
from advlab.attacks import APGD, APGDT, PGD, Square
from advlab.attacks.boundary import BoundaryL1
from advlab.attacks.fab import FABT
from advlab.data import mnist_tensors
from advlab.models import CompactCNN


def per_image(fn, n, reps=5):
    fn()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps / n


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    x, y = mnist_tensors(n, train=False)
    model = CompactCNN().eval()
    with torch.no_grad():
        fwd = per_image(lambda: model(x), n)

    def step():
        xg = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xg), y), xg)

    fb = per_image(step, n)
    print(f"{torch.get_num_threads()} threads: forward {1e3 * fwd:.3f} ms/image, "
          f"forward+backward {1e3 * fb:.3f} ms/image")
    total = 0.0
    for name, stack in presets.trusted_attacks("mnist").items():
        if name == "rt":
            cost = 775 * fwd * 1000
            print(f"  rt  : grid of 775 transforms: {cost / 60:6.1f} min")
            total += cost
            continue
        parts = []
        for atk in stack:
            if isinstance(atk, APGDT):
                c = atk.targets * (atk.steps + 1) * fb * 1000
            elif isinstance(atk, PGD):
                c = (atk.steps + 1) * atk.restarts * fb * 1000
            elif isinstance(atk, APGD):
                c = (atk.steps + 1) * atk.restarts * fb * 1000
            elif isinstance(atk, Square):
                c = atk.queries * fwd * 1000
            elif isinstance(atk, FABT):  # one forward and backward pass per step and target
                c = (atk.targets - atk.skip) * (atk.steps + 1) * fb * 1000
            elif isinstance(atk, BoundaryL1):  # per step: 3 class copies, 1 + 3 bisections;
                # per restart: 100 noise levels and about 784 resets (forward passes)
                c = atk.restarts * (atk.steps * (3 * fb + 4 * fwd) + 884 * fwd) * 1000
            else:
                raise TypeError(f"no cost model for {type(atk).__name__}; add one here")
            parts.append(f"{type(atk).__name__} {c / 60:.1f}")
            total += c
        print(f"  {name:4}: " + ", ".join(parts) + " min (worst case, 1000 images)")
    print(f"worst case total: {total / 60:.0f} min on 1000 images")


if __name__ == "__main__":
    main()
