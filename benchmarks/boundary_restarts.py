"""Are the boundary attack's restarts enough? More restarts, with new seeds, on the images a
zoo model's stored result leaves standing under l_1.

    ADVLAB_DATA=../shared/data python benchmarks/boundary_restarts.py \\
        --model mnist-eat-apgd-l1ft --n 200 --restarts 8 --threads 1

The stored result (``advlab/zoo/results/MODEL.json``, per-image outcomes) says which of the
first n test images survive the trusted l_1 stack, which ends in ``BoundaryL1`` with
``advlab.evaluation.strengths``' restarts. This runs ``boundary_l1`` on those images again,
one restart at a time with seeds the stack does not use (1000, 1001, ...), and prints after
each how many it broke (misclassified, within l_1 10 and the box, checked here) and the CPU
seconds so far. Breaks that keep coming say the stored l_1 number is still an upper bound by
about that many images; ``--out`` keeps the curve as JSON. ``--steps`` and ``--classes`` change
the attack's own (to compare settings on the same images).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import advlab.zoo as zoo
from advlab.attacks.boundary import boundary_l1
from advlab.data import mnist_tensors
from advlab.presets import threats
from advlab.zoo import outcomes
from advlab.zoo.measure import RESULTS


def curve(model, x, y, restarts: int, steps: int, classes: int) -> list[dict]:
    """One row per restart: images broken by it, by all so far, CPU seconds so far."""
    th = threats("mnist")["l1"]
    broken = torch.zeros(len(y), dtype=torch.bool)
    rows, c0 = [], time.process_time()
    for r in range(restarts):
        gen = torch.Generator().manual_seed(1000 + r)
        res = boundary_l1(model, x, y, th, steps=steps, restarts=1, classes=classes,
                          generator=gen)
        with torch.no_grad():
            wrong = model(res.x_adv).argmax(1) != y
        ok = wrong & th.contains(x, res.x_adv)
        broken |= ok
        rows.append({"restart": r + 1, "broke": int(ok.sum()), "so_far": int(broken.sum()),
                     "cpu_seconds": round(time.process_time() - c0, 1),
                     "images": broken.nonzero().flatten().tolist()})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mnist-eat-apgd-l1ft")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--restarts", type=int, default=8)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stored = json.loads((RESULTS / f"{args.model}.json").read_text())
    if "outcomes" not in stored:
        p.error(f"{args.model}'s stored result has no per-image outcomes: remeasure it first "
                "(python -m advlab.zoo.remeasure)")
    idx = outcomes.unpack(stored["outcomes"])["l1"][:args.n].nonzero().flatten()
    if idx.numel() == 0:
        print(f"{args.model}: no image of the first {args.n} survives l_1; nothing to do")
        return 0
    x, y = mnist_tensors(args.n, train=False)
    model = zoo.load(args.model).eval()
    print(f"{args.model}: {idx.numel()} of the first {args.n} test images stand under l_1 "
          f"({stored['attacks'].split('l1: ')[1].split(';')[0]})", flush=True)
    rows = curve(model, x[idx], y[idx], args.restarts, args.steps, args.classes)
    for row in rows:
        print(f"restart {row['restart']}: broke {row['broke']}, {row['so_far']} so far, "
              f"{row['cpu_seconds']} CPU s", flush=True)
    if args.out:
        for row in rows:
            row["images"] = idx[row["images"]].tolist()
        args.out.write_text(json.dumps({"model": args.model, "n": args.n, "steps": args.steps,
                                        "classes": args.classes, "standing": idx.numel(),
                                        "attacks": stored["attacks"], "curve": rows},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
