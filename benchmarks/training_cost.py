"""Cost of each training strategy relative to single-norm PGD adversarial training.

One epoch of each zoo recipe on the first N MNIST training images (one run each), timed, and
divided by the epoch time of ``mnist-linf-pgd`` (l_inf PGD, 5 steps: the single-norm reference).

    python benchmarks/training_cost.py --n 512 --threads 1 --out benchmarks/training_cost.md

The ratio is what matters: it carries over to the full 60000 images (an epoch is N / 60000 of
it) and, roughly, to a GPU. "passes" is the strategy's own count of forward+backward passes
per training example (forward-only passes count 1/3), the ratio one expects.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

REFERENCE = "mnist-linf-pgd"


def main(argv=None) -> int:
    from advlab.train import RECIPES, train

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=2048, help="training images per epoch")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--recipes", nargs="*", default=None)
    p.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [REFERENCE] + [n for n in (args.recipes or list(RECIPES)) if n != REFERENCE]
    from advlab.data import mnist_tensors

    data = mnist_tensors(args.n, train=True)
    times, passes = {}, {}
    for name in names:
        one = {"peak_epoch": 0.5} if RECIPES[name].schedule == "triangle" else {}  # lr: no cost
        recipe = RECIPES[name].with_(n_train=args.n, monitor=0, epochs=1, **one)
        t0 = time.perf_counter()
        train(recipe, data=data, device=args.device, progress=False, log=lambda _: None)
        times[name] = time.perf_counter() - t0
        passes[name] = recipe.build_strategy().cost()
        print(f"{name:<20} {times[name]:7.1f}s  x{times[name] / times.get(REFERENCE, 1):.2f}",
              flush=True)
    ref = times[REFERENCE]
    lines = [
        f"Training cost per epoch relative to `{REFERENCE}` (l_inf PGD-5 adversarial training); "
        f"one epoch of {args.n} MNIST images per recipe, one run, "
        f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s), torch "
        f"{torch.__version__}, load average {os.getloadavg()[0]:.1f}.",
        "",
        f"| recipe | strategy | arch | epoch of {args.n} (s) | ratio | expected (passes) | "
        "full epoch (min) | epochs | whole recipe (h) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        r = RECIPES[name]
        full = times[name] * 60000 / args.n / 60  # minutes for the 60000 images, same threads
        lines.append(f"| {name} | {r.strategy} | {r.arch} | {times[name]:.1f} | "
                     f"{times[name] / ref:.2f} | {passes[name] / passes[REFERENCE]:.2f} | "
                     f"{full:.0f} | {r.epochs} | {full * r.epochs / 60:.1f} |")
    lines += ["", "Full epoch and whole recipe: the measured epoch scaled to 60000 images and the "
              "recipe's epochs, on the same threads and load, without the per-epoch monitor; "
              "the zoo's logs give the wall time of the runs that were made."]
    lines += ["", f"Produced by `python {' '.join(sys.argv)}`."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
