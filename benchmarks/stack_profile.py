"""Where the trusted evaluation's time goes: each attack of a threat's stack, timed.

    ADVLAB_DATA=../shared/data python benchmarks/stack_profile.py \\
        --model mnist-eat-apgd-l1ft --threats l1 --n 100 --threads 1

Runs ``advlab.presets.trusted_attacks`` (the "strong" stack) through ``evaluate_union`` on the
first n MNIST test images of a zoo model and prints, per threat and per attack in stack order:
how many images it attacked (those every attack before it left standing), how many it broke
first, its wall seconds and its share of the threat's time (``UnionResult.attack_seconds``).
Shares are ratios within one run, so they carry over to other machines better than seconds.
``--out FILE.json`` keeps the table with the command that produced it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import advlab.zoo as zoo
from advlab.data import mnist_tensors
from advlab.device import fast_on_cpu
from advlab.evaluate import evaluate_union
from advlab.presets import trusted_attacks
from advlab.zoo.measure import describe_attack


def profile(model, x, y, names: list[str]) -> dict[str, list[dict]]:
    """threat -> one entry per attack of its stack: attacked, broke, seconds, share."""
    stacks = trusted_attacks("mnist", include=names)
    res = evaluate_union(model, (x, y), stacks, progress=False, keep_worst=False)
    out = {}
    for name, stack in stacks.items():
        by = res.broken_by[name]
        standing = int(res.clean.sum())
        total = sum(res.attack_seconds[name]) or 1.0
        rows = []
        for pos, (attack, secs) in enumerate(zip(stack, res.attack_seconds[name], strict=True)):
            broke = int((by == pos).sum())
            rows.append({"attack": describe_attack(attack), "attacked": standing,
                         "broke": broke, "seconds": secs, "share": secs / total})
            standing -= broke
        out[name] = rows
    return out


def markdown(table: dict[str, list[dict]]) -> str:
    lines = ["| threat | attack | images attacked | broke first | seconds | share |",
             "|---|---|---|---|---|---|"]
    for name, rows in table.items():
        for r in rows:
            lines.append(f"| {name} | {r['attack']} | {r['attacked']} | {r['broke']} | "
                         f"{r['seconds']:.1f} | {100 * r['share']:.0f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="mnist-eat-apgd-l1ft", help="a zoo model")
    p.add_argument("--threats", default="linf,l2,l1", help="comma-separated l_p threats")
    p.add_argument("--n", type=int, default=100, help="the first N MNIST test images")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="keep the table as JSON")
    args = p.parse_args(argv)
    if args.model not in zoo.available():
        p.error(f"--model {args.model}: not a zoo model; choose one of {zoo.available()}")
    names = [t.strip() for t in args.threats.split(",") if t.strip()]
    unknown = [t for t in names if t not in ("linf", "l2", "l1")]
    if unknown or not names:
        p.error(f"--threats {args.threats}: give l_p threats among linf, l2, l1")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = fast_on_cpu(zoo.load(args.model))
    x, y = mnist_tensors(args.n, train=False)
    table = profile(model, x, y, names)
    print(markdown(table))
    if args.out:
        command = " ".join(["python benchmarks/stack_profile.py",
                            *(sys.argv[1:] if argv is None else argv)])
        args.out.write_text(json.dumps({"command": command, "model": args.model, "n": args.n,
                                        "threads": torch.get_num_threads(), "table": table},
                                       indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
