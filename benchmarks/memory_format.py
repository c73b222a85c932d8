"""What channels_last weights buy the evaluation on a CPU.

The trusted evaluation of a zoo model is forward passes (Square queries, the rotation grid) and
forward + backward passes to the input (APGD and PGD steps). This times both for a model in the
default layout and the same model with channels_last weights, interleaved in one run (the
machine is noisy, so only the ratio is meaningful), and prints contiguous / channels_last.

    python benchmarks/memory_format.py [--batch 500] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from advlab.models import CompactCNN, MadryCNN


def _forward(model, x, y):
    with torch.no_grad():
        model(x)


def _input_grad(model, x, y):
    xg = x.clone().requires_grad_(True)
    torch.autograd.grad(F.cross_entropy(model(xg), y), xg)


def _time(fn, model, x, y, reps: int = 3) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn(model, x, y)
    return (time.perf_counter() - t) / reps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    print(f"CPU, {args.threads} thread(s), batch {args.batch}, torch {torch.__version__}; "
          f"median (min) of {args.repeats} interleaved repeats of contiguous / channels_last")
    for name, cls in (("compact-cnn", CompactCNN), ("madry-cnn", MadryCNN)):
        plain = cls().eval()
        last = copy.deepcopy(plain).to(memory_format=torch.channels_last)
        for label, fn in (("forward", _forward), ("forward+backward", _input_grad)):
            fn(plain, x, y), fn(last, x, y)  # warm-up
            ratios = []
            for _ in range(args.repeats):
                a = _time(fn, plain, x, y)
                b = _time(fn, last, x, y)
                ratios.append(a / b)
            print(f"{name:<12} {label:<17} {statistics.median(ratios):6.2f}x "
                  f"({min(ratios):.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
