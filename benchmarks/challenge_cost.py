"""What grading one defense costs, against the trusted evaluation on the same images.

    python benchmarks/challenge_cost.py --n 1000            # the issue's question
    nice -n 19 python benchmarks/challenge_cost.py --n 20   # a quick look

The defense (a zoo model of the course's size, saved as a student would with ``save_defense``)
is graded by :func:`advlab.challenge.defense.grade_defense` (safetensors checks, clean floor,
``evaluate_union`` with ``trusted_attacks``, ``advlab.diagnose`` on ``--diagnose-n`` images per
l_p threat), and timed against a plain ``evaluate_union(model, (x, y), trusted_attacks(...))``
on the same held-out images. Prints both times, their ratio, the part the diagnosis takes, and
whether the two union accuracies agree (they must: same attacks, seeded).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000, help="held-out images")
    p.add_argument("--model", default="mnist-max", help="zoo model graded as the defense")
    p.add_argument("--threats", default="linf,l1,l2")
    p.add_argument("--diagnose-n", type=int, default=100,
                   help="images for advlab.diagnose per threat (the challenge default: 100)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args()

    import torch

    import advlab.zoo
    from advlab import evaluate_union, presets
    from advlab.challenge import save_defense, spec
    from advlab.challenge.defense import grade_defense

    torch.set_num_threads(args.threads)
    threats = args.threats.split(",")
    model = advlab.zoo.load(args.model)
    ch = spec.new("benchmark", seed=0, n=args.n, defense=spec.DefenseTrack(
        threats=threats, strength="strong", clean_floor=0.0, diagnose_n=args.diagnose_n))
    x, y = spec.held_out(ch)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "defense.safetensors"
        save_defense(model, path, advlab.zoo.REGISTRY[args.model].arch)
        raw = path.read_bytes()

    t0 = time.perf_counter()
    plain = evaluate_union(model, (x, y), presets.trusted_attacks("mnist", include=threats),
                           progress=False, keep_worst=False)
    t_eval = time.perf_counter() - t0

    t0 = time.perf_counter()
    entry = grade_defense(ch, raw, "benchmark", images=(x, y))
    t_grade = time.perf_counter() - t0

    ch.defense.diagnose_n = 0  # the same grading without the diagnosis
    t0 = time.perf_counter()
    bare = grade_defense(ch, raw, "benchmark", images=(x, y))
    t_bare = time.perf_counter() - t0

    out = {
        "n": args.n, "model": args.model, "threats": threats, "diagnose_n": args.diagnose_n,
        "evaluate_union_s": round(t_eval, 1), "grade_s": round(t_grade, 1),
        "grade_without_diagnose_s": round(t_bare, 1), "ratio": round(t_grade / t_eval, 3),
        "ratio_without_diagnose": round(t_bare / t_eval, 3),
        "union_plain": 100 * plain.union_accuracy,
        "union_graded": entry.metrics.get("union accuracy"),
        "masking_flags": entry.metrics.get("masking flags"),
        "agree": abs(100 * plain.union_accuracy - entry.metrics.get("union accuracy", -1)) < 1e-9
        and abs(100 * plain.union_accuracy - bare.metrics.get("union accuracy", -1)) < 1e-9,
    }
    for k, v in out.items():
        print(f"{k:>26}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
