"""Which l1-APGD breaks the images at the edge of the l_1 budget: advlab's way of choosing the
coordinates it steps on (``sparsity="mass"``) or AutoAttack's (``sparsity="l0"``)?

    ADVLAB_DATA=../shared/data python benchmarks/l1_sparsity.py --seeds 2 --threads 1 \\
        --out benchmarks/results/l1_sparsity.json

The images are those Croce & Hein's AutoAttack broke under l_1 10 and a stored zoo row had left
standing: by default every l_1 row's "autoattack_breaks_stored_leaves" in ``--from`` (the
results of ``benchmarks/autoattack_vs_stored.py``), or ``--cases "mnist-max:69,128;mnist-eat:134"``.
On each, for each sparsity and seed, the strong stack's shrinking-budget pair runs: l1-APGD with
5 restarts, then targeted l1-APGD at 5 classes, both at 3-2-1 x eps. The table says which
images each broke (misclassified, checked inside the l_1 ball and the box) and the CPU seconds;
``--out`` keeps it as JSON with the command and the cases, so it can be run again as it was.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

import advlab.zoo as zoo
from advlab.data import mnist_tensors
from advlab.device import fast_on_cpu
from advlab.presets import threats, trusted_attacks

ROOT = Path(__file__).resolve().parents[1]
SPARSITIES = ("mass", "l0")


def parse_cases(text: str) -> dict[str, list[int]]:
    """"model:i,j;model2:k" -> {model: [i, j], model2: [k]}."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, idx = part.partition(":")
        if not idx:
            raise SystemExit(f"--cases: {part!r} has no images; write model:i,j;model2:k")
        out[name] = [int(i) for i in idx.split(",")]
    return out


def cases_from(path: Path) -> dict[str, list[int]]:
    """The l_1 images AutoAttack broke that the stored rows left, from its results file."""
    rows = json.loads(path.read_text())["rows"]
    return {r["model"]: r["autoattack_breaks_stored_leaves"] for r in rows
            if r["threat"] == "l1" and r["autoattack_breaks_stored_leaves"]}


def pair(sparsity: str, seed: int):
    """The strong l_1 stack's shrinking-budget pair with this sparsity, seeded with ``seed``."""
    stack = trusted_attacks("mnist", include=["l1"])["l1"]
    return [replace(a, seed=seed) for a in stack
            if getattr(a, "eps_scales", (1.0,)) != (1.0,) and a.sparsity == sparsity]


def broken(model, x, y, attacks) -> list[bool]:
    ball = threats("mnist")["l1"]
    hit = torch.zeros(len(y), dtype=torch.bool)
    for attack in attacks:
        res = attack(model, x, y)
        with torch.no_grad():
            hit |= (model(res.x_adv).argmax(1) != y) & ball.contains(x, res.x_adv)
    return hit.tolist()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", type=Path,
                   default=ROOT / "benchmarks/results/autoattack_vs_stored_n200.json")
    p.add_argument("--cases", help='"model:i,j;model2:k" (default: from --from)')
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = parse_cases(args.cases) if args.cases else cases_from(args.source)
    if not cases:
        raise SystemExit(f"no l_1 images to attack in {args.source}; pass --cases")
    spec = ";".join(f"{m}:{','.join(map(str, idx))}" for m, idx in cases.items())
    x_all, y_all = mnist_tensors(n=max(max(idx) for idx in cases.values()) + 1)
    rows, seconds = [], dict.fromkeys(SPARSITIES, 0.0)
    for name, idx in cases.items():
        model = fast_on_cpu(zoo.load(name)).eval()
        x, y = x_all[idx], y_all[idx]
        for sparsity in SPARSITIES:
            for seed in range(args.seeds):
                t0 = time.process_time()
                hit = broken(model, x, y, pair(sparsity, seed))
                seconds[sparsity] += time.process_time() - t0
                rows.append({"model": name, "images": idx, "sparsity": sparsity, "seed": seed,
                             "broken": hit})
                marks = " ".join(f"{i}:{'x' if h else '-'}" for i, h in zip(idx, hit, strict=True))
                print(f"{name:20s} {sparsity:4s} seed {seed}: {marks}", flush=True)
    total = sum(len(v) for v in cases.values())
    by = {s: {(r["model"], i) for r in rows if r["sparsity"] == s
              for i, h in zip(r["images"], r["broken"], strict=True) if h} for s in SPARSITIES}
    summary = {s: len(by[s]) for s in SPARSITIES} | {"both": len(by["mass"] | by["l0"]),
                                                      "images": total}
    print(f"of {total} images, over {args.seeds} seeds: advlab's sparsity broke {summary['mass']}, "
          f"AutoAttack's {summary['l0']}, together {summary['both']}; CPU s "
          + ", ".join(f"{s} {v:.0f}" for s, v in seconds.items()))
    if args.out:
        cmd = ["python", "benchmarks/l1_sparsity.py", "--cases", spec, "--seeds",
               str(args.seeds), "--threads", str(args.threads), "--out", str(args.out)]
        args.out.write_text(json.dumps({"command": shlex.join(cmd), "summary": summary,
                                        "cpu_seconds": seconds, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
