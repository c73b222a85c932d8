"""How much do l_1 training attacks overstate l_1 robustness, compared with the trusted stack?

    ADVLAB_DATA=../shared/data python benchmarks/l1_training_attacks.py \\
        --model mnist-eat-apgd-l1ft --n 200 --threads 1 \\
        --out benchmarks/results/l1_training_attacks_n200.json \\
        --table benchmarks/results/l1_training_attacks_n200.md --splice docs/experiments/README.md

A training run only learns from the adversarial examples its attack finds. On models whose
l_inf training masks l_1 gradients, plain l1-APGD finds far fewer than the trusted l_1 stack,
so the run believes l_1 is learnt and (E-AT) trains on it less. This runs each candidate
training attack, built exactly as a recipe's ``AttackSpec`` builds it, once (seed 0) on the
first n test images of a zoo model, and compares with the model's stored trusted l_1 outcome
per image: its robust accuracy (an image counts as broken only if the output is misclassified,
inside the l_1 ball and in the box), the images the trusted stack broke that it leaves
standing, its cost (forward and backward passes per image) and its CPU seconds; and any image
it breaks that the trusted stack leaves (there should be none: each would be an overclaim in
the stored row).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

import advlab.zoo as zoo
from advlab.data import mnist_tensors
from advlab.device import fast_on_cpu
from advlab.generated_blocks import find, splice
from advlab.presets import threats
from advlab.train import AttackSpec
from advlab.zoo.compare import load as load_evaluation

MARKER = "l1-training-attacks"  # the block ``--splice DOC.md`` writes the table into
#: key -> (label, the training attack's ``AttackSpec("l1", **kwargs)`` arguments)
CANDIDATES = {
    "pgd5": ("PGD-5 (SLIDE, step 2.5)", dict(kind="pgd", steps=5, step_size=2.5)),
    "pgd10": ("PGD-10 (SLIDE, step 1.0)", dict(kind="pgd", steps=10, step_size=1.0)),
    "apgd10": ("l1-APGD-10", dict(kind="apgd", steps=10)),
    "apgd30": ("l1-APGD-30", dict(kind="apgd", steps=30)),
    "apgd30-l0": ("l1-APGD-30, l0 sparsity", dict(kind="apgd", steps=30, sparsity="l0")),
    "apgd30-321": ("l1-APGD-30, 3-2-1 x eps", dict(kind="apgd", steps=30, eps_scales=(3, 2, 1))),
    "apgd30-321-l0": ("l1-APGD-30, 3-2-1 x eps, l0 sparsity",
                      dict(kind="apgd", steps=30, eps_scales=(3, 2, 1), sparsity="l0")),
    "apgd30-531-l0": ("l1-APGD-30, 5-3-1 x eps, l0 sparsity",
                      dict(kind="apgd", steps=30, eps_scales=(5, 3, 1), sparsity="l0")),
    "apgd60-531-l0": ("l1-APGD-60, 5-3-1 x eps, l0 sparsity",
                      dict(kind="apgd", steps=60, eps_scales=(5, 3, 1), sparsity="l0")),
}


def trusted_l1(name: str, n: int) -> torch.Tensor:
    """(n,) bool: the images the stored trusted l_1 row leaves standing."""
    try:
        stored = load_evaluation(name)
    except ValueError as err:
        raise SystemExit(str(err)) from err
    if stored.n < n or "l1" not in stored.survive:
        raise SystemExit(f"{name}'s stored result has l_1 outcomes for {stored.n} images, not "
                         f"{n}: pass --n {stored.n} or less")
    return stored.survive["l1"][:n]


def row(model, x, y, key, trusted) -> dict:
    label, kwargs = CANDIDATES[key]
    spec = AttackSpec("l1", **kwargs)
    ball = threats("mnist")["l1"]
    t0 = time.process_time()
    res = spec.build()(model, x, y, generator=torch.Generator().manual_seed(0))
    seconds = time.process_time() - t0
    with torch.no_grad():
        standing = (model(res.x_adv).argmax(1) == y) | ~ball.contains(x, res.x_adv)
    how = spec.options() | {"kind": spec.kind, "steps": spec.steps}
    return {"key": key, "attack": label, "spec": how,
            "cost": spec.cost(), "robust": round(100 * standing.float().mean().item(), 1),
            "misses": int((standing & ~trusted).sum()),
            "beats_trusted": (~standing & trusted).nonzero().flatten().tolist(),
            "cpu_seconds": round(seconds, 1)}


def markdown(saved: dict) -> str:
    lines = [f"Produced by `{saved['command']}`; first {saved['n']} MNIST test images of "
             f"`{saved['model']}`, whose stored trusted l_1 row leaves {saved['trusted']}% "
             "standing.", "",
             "| training attack | passes per image | robust (%) | trusted-broken images it "
             "leaves | CPU s |", "|---|---|---|---|---|"]
    lines += [f"| {r['attack']} | {r['cost']} | {r['robust']} | {r['misses']} | "
              f"{r['cpu_seconds']} |" for r in saved["rows"]]
    beat = {r["attack"]: r["beats_trusted"] for r in saved["rows"] if r["beats_trusted"]}
    lines += ["", "Images a training attack broke that the stored trusted row leaves: "
              + ("; ".join(f"{k}: {v}" for k, v in beat.items()) if beat else "none.")]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mnist-eat-apgd-l1ft")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--only", help=f"comma-separated candidates of {', '.join(CANDIDATES)} "
                   "(default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    p.add_argument("--table", type=Path)
    p.add_argument("--splice", type=Path, action="append", default=[], metavar="DOC.md",
                   help=f"put the table between DOC's <!-- {MARKER} --> markers")
    args = p.parse_args(argv)
    for doc in args.splice:
        try:
            find(doc.read_text() if doc.is_file() else "", MARKER, str(doc))
        except ValueError as err:
            p.error(f"--splice: {err}")
    torch.set_num_threads(args.threads)
    chosen = list(CANDIDATES) if not args.only else [c.strip() for c in args.only.split(",")]
    unknown = [c for c in chosen if c not in CANDIDATES]
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    trusted = trusted_l1(args.model, args.n)
    model = fast_on_cpu(zoo.load(args.model)).eval()
    x, y = mnist_tensors(n=args.n)
    rows = []
    for key in chosen:
        rows.append(row(model, x, y, key, trusted))
        r = rows[-1]
        print(f"{r['attack']:38s} robust {r['robust']:5.1f}%  leaves {r['misses']:3d} the trusted "
              f"stack broke  {r['cpu_seconds']:.0f} CPU s", flush=True)
    cmd = ["python", "benchmarks/l1_training_attacks.py", "--model", args.model, "--n",
           str(args.n), "--threads", str(args.threads)]
    cmd += ["--only", args.only] if args.only else []
    cmd += ["--out", str(args.out)] if args.out else []
    cmd += ["--table", str(args.table)] if args.table else []
    cmd += [a for doc in args.splice for a in ("--splice", str(doc))]
    saved = {"command": shlex.join(cmd), "model": args.model, "n": args.n,
             "trusted": round(100 * trusted.float().mean().item(), 1), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(saved, indent=1) + "\n")
    if args.table:
        args.table.write_text(markdown(saved))
    for doc in args.splice:
        splice(doc, MARKER, markdown(saved))
        print(f"spliced into {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
