"""Which attack breaks an image that only one side of ``vs_autoattack.py`` broke?

    ADVLAB_DATA=../shared/data python benchmarks/explain_gap.py \\
        --rows benchmarks/results/vs_autoattack_n200.json --threads 1

For every row of a ``vs_autoattack.py`` results file with images only AutoAttack broke (or only
advlab broke), runs each component of both suites alone on those images: AutoAttack's APGD-CE,
APGD-T, FAB-T and Square (torchattacks, as ``vs_autoattack.py`` builds them; EAD and foolbox's
FMN-L1 for l_1) and each attack of advlab's trusted stack, then advlab's targeted APGD again with
other seeds (does more randomness find it?) and advlab's targeted FAB at AutoAttack's 9 targets
where the stack aims it at fewer (do the further classes find it?). Prints, per image, which
attacks break it and, per target rank 1-9, the l_p distance of the closest example targeted FAB
finds towards that class (how far each class's boundary lies); ``--out`` keeps it as JSON.
Run alone on a few images, an attack's random start
differs from the one it had in the full batch, so a component that broke the image there may
miss it here (then it says so).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

from advlab.attacks.apgd import APGDT
from advlab.attacks.fab import FABT
from advlab.data import mnist_tensors
from advlab.presets import threats, trusted_attacks
from advlab.zoo.measure import describe_attack

HERE = Path(__file__).resolve().parent
_SPEC = importlib.util.spec_from_file_location("vs_autoattack", HERE / "vs_autoattack.py")
vs = importlib.util.module_from_spec(_SPEC)
sys.modules[vs.__name__] = vs  # dataclasses look their module up
_SPEC.loader.exec_module(vs)

COMPONENTS = ("APGD-CE", "APGD-T", "FAB-T", "Square")
AUTOATTACK_FAB_TARGETS = 9  # AutoAttack's FAB-T aims at every other class


def autoattack_components(model, name: str, suite: str, ead_steps: int) -> dict:
    """AutoAttack's components for threat ``name``, by name (for l_1 the independent ones)."""
    suite_attack = vs.autoattack(model, name, threats("mnist")[name].eps, suite,
                                 vs.L1Side(ead_steps=ead_steps))
    if isinstance(suite_attack, vs.IndependentL1):  # l_1: EAD, FMN-L1, Pointwise + BB-L1
        return {"EAD": suite_attack.ead, "FMN-L1": suite_attack.fmn,
                "Pointwise + Brendel-Bethge-L1": suite_attack.boundary}
    parts = getattr(suite_attack, "attacks", None)
    if parts is None:  # torchattacks' own AutoAttack class
        return {type(suite_attack).__name__: suite_attack}
    return dict(zip(COMPONENTS, parts, strict=True))


def broken_by(model, x, y, name, attack_fn) -> list[bool]:
    """Per image: misclassified at the attack's output, and the output is in the threat model."""
    threat = threats("mnist")[name]
    x_adv = attack_fn(x, y).detach()
    with torch.no_grad():
        wrong = model(x_adv).argmax(1) != y
    return (wrong & threat.contains(x, x_adv)).tolist()


def explain(model, x, y, name: str, suite: str = "original", ead_steps: int = 200,
            seeds: int = 4) -> dict[str, list[bool]]:
    """Attack -> per image of (x, y), whether it breaks it alone."""
    out = {f"AutoAttack {k}": broken_by(model, x, y, name, a)
           for k, a in autoattack_components(model, name, suite, ead_steps).items()}
    for attack in trusted_attacks("mnist", include=[name])[name]:
        out[f"advlab {describe_attack(attack)}"] = broken_by(
            model, x, y, name, lambda xb, yb, a=attack: a(model, xb, yb).x_adv)
    for targeted in [a for a in trusted_attacks("mnist", include=[name])[name]
                     if isinstance(a, APGDT)]:
        for seed in range(1, seeds + 1):
            other = APGDT(targeted.threat, steps=targeted.steps, targets=targeted.targets,
                          seed=seed)
            out[f"advlab {describe_attack(other)}, seed {seed}"] = broken_by(
                model, x, y, name, lambda xb, yb, a=other: a(model, xb, yb).x_adv)
    for fab in [a for a in trusted_attacks("mnist", include=[name])[name]
                if isinstance(a, FABT) and a.targets < AUTOATTACK_FAB_TARGETS]:
        more = FABT(fab.threat, steps=fab.steps, targets=AUTOATTACK_FAB_TARGETS)
        out[f"advlab {describe_attack(more)}"] = broken_by(
            model, x, y, name, lambda xb, yb, a=more: a(model, xb, yb).x_adv)
    return out


def fab_distance_by_rank(model, x, y, name: str, steps: int = 100, scale: float = 4.0):
    """Per image, per target rank r = 1..9 (the r-th class by clean logit after y): the l_p
    distance of the closest example targeted FAB finds towards that class within ``scale``
    times the budget (None if none): how far each class's boundary lies."""
    threat = threats("mnist")[name]
    wide = type(threat)(threat.eps * scale)
    out = [[] for _ in range(len(y))]
    for rank in range(1, AUTOATTACK_FAB_TARGETS + 1):
        res = FABT(wide, steps=steps, targets=rank, skip=rank - 1)(model, x, y)
        dist = threat.norm(res.x_adv - x)
        for i, (hit, d) in enumerate(zip(res.success.tolist(), dist.tolist(), strict=True)):
            out[i].append(round(d, 4) if hit else None)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=Path, default=HERE / "results" / "vs_autoattack_n200.json")
    p.add_argument("--only", default=None, metavar="MODEL:THREAT,...",
                   help="only these rows, e.g. mnist-msd:l2 (default every row)")
    p.add_argument("--seeds", type=int, default=4, help="other seeds for advlab's APGD-T")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="keep the findings as JSON")
    args = p.parse_args(argv)
    if not args.rows.is_file():
        p.error(f"--rows {args.rows}: no such file (write it with benchmarks/vs_autoattack.py)")
    if args.threads:
        torch.set_num_threads(args.threads)
    stored = json.loads(args.rows.read_text())
    x_all, y_all = mnist_tensors(stored["n"], train=False)
    found = []
    only = set(args.only.split(",")) if args.only else None
    for row in stored["rows"]:
        if only is not None and f"{row['model']}:{row['threat']}" not in only:
            continue
        for side in ("only_autoattack_breaks", "only_advlab_breaks"):
            idx = row[side]
            if not idx:
                continue
            model = vs.load_model(row["model"])
            res = explain(model, x_all[idx], y_all[idx], row["threat"], stored["suite"],
                          seeds=args.seeds)
            dist = fab_distance_by_rank(model, x_all[idx], y_all[idx], row["threat"])
            print(f"\n{row['model']} {row['threat']}: {side.replace('_', ' ')} {idx}")
            for attack, hits in res.items():
                print(f"  {attack:<52} " + " ".join("breaks" if h else "-" for h in hits))
            for i, d in zip(idx, dist, strict=True):
                print(f"  image {i}: FAB-T distance per target rank 1-9: {d}")
            found.append({"model": row["model"], "threat": row["threat"], "side": side,
                          "images": idx, "broken_by": res, "fab_distance_by_rank": dist})
    if not found:
        print("no image broken by only one side in", args.rows)
    if args.out:
        rows = args.rows.resolve()
        rows = rows.relative_to(HERE.parent) if rows.is_relative_to(HERE.parent) else rows
        command = " ".join(["python benchmarks/explain_gap.py", *(sys.argv[1:] if argv is None
                                                                  else argv)])
        args.out.write_text(json.dumps({"command": command, "rows": str(rows), "found": found},
                                       indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
