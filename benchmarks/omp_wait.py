"""What OpenMP's wait policy does to advlab's attacks on a shared CPU (a benchmark, not a test).

    python benchmarks/omp_wait.py                # idle, then with 2 busy background processes
    python benchmarks/omp_wait.py --load 2 --repeats 5

Times PGD-3 on batches of 64 MNIST-sized inputs against notebook 2's small CNN (the inner loop of
its live adversarial training), each variant in a fresh process because OpenMP reads
``OMP_WAIT_POLICY`` when torch loads: all threads with the default policy (idle threads spin),
all threads with ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep; what ``advlab``'s command
line, ``import advlab`` before torch, and the notebooks set), and one thread. The variants are
interleaved within each repeat, so a noisy machine slows them alike; the table gives the
median (min) milliseconds per PGD call and each median over the default's. With busy
background processes a spinning thread waits for a sibling the scheduler has taken off the
CPU, which is where the default policy loses.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys

CHILD = r"""
import sys, time, torch
from torch import nn
torch.set_num_threads(int(sys.argv[1]))
from advlab import Linf, pgd
torch.manual_seed(0)
m = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                  nn.Linear(32 * 49, 100), nn.ReLU(), nn.Linear(100, 10))
x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
pgd(m, x, y, Linf(0.1), steps=3, step_size=0.08)
t = time.perf_counter()
for _ in range(int(sys.argv[2])):
    pgd(m, x, y, Linf(0.1), steps=3, step_size=0.08)
print(1e3 * (time.perf_counter() - t) / int(sys.argv[2]))
"""


def _busy() -> None:
    while True:
        pass


def _run(threads: int, policy: str | None, calls: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(calls)], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure(load: int, repeats: int, calls: int) -> dict:
    cores = os.cpu_count() or 1
    variants = {f"{cores} threads, default": (cores, None),
                f"{cores} threads, PASSIVE": (cores, "PASSIVE"), "1 thread": (1, None)}
    busy = [mp.Process(target=_busy, daemon=True) for _ in range(load)]
    for p in busy:
        p.start()
    try:
        times = {name: [] for name in variants}
        for _ in range(repeats):
            for name, (threads, policy) in variants.items():
                times[name].append(_run(threads, policy, calls))
    finally:
        for p in busy:
            p.terminate()
    return times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", default="0,2", help="busy background processes, comma-separated")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--calls", type=int, default=30, help="PGD calls per timing")
    args = p.parse_args(argv)
    for load in (int(v) for v in args.load.split(",")):
        times = measure(load, args.repeats, args.calls)
        base = statistics.median(next(iter(times.values())))
        la = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\n{load} busy background processes (load average {la:.1f} at the end)")
        print(f"{'variant':<22} {'ms per PGD-3 call':>20}  / default")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:<22} {med:10.1f} ({min(ts):.1f}){'':>4}  {med / base:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
