"""The union evaluator against running every attack at full budget on every example.

For a standard and an adversarially trained MNIST model, on the first N test images, with the
same attacks (a preset strength), this reports:
- the naive way: every attack of every threat on every clean-correct example, all restarts;
- ``evaluate_union``: attacks of a threat run only on examples still standing, restarts only on
  examples not yet broken; and with per_threat=False, each threat only on examples that
  survived the threats before it (the union alone);
and prints time ratios and the accuracies side by side (they must agree up to attack randomness;
the union evaluator can only be as strong or stronger since it keeps the per-example worst case).

    python benchmarks/union_eval.py [--n 500] [--strength standard]
"""

from __future__ import annotations

import argparse
import time

import torch

from advlab import presets
from advlab.attacks import PGD
from advlab.data import mnist_tensors
from advlab.evaluate import evaluate_union
from advlab.models import CompactCNN
from advlab.threats import Linf
from advlab.train.basic import fit


def naive(model, x, y, attacks):
    """Every attack on every clean-correct example; an example is robust to a threat if no
    attack of it succeeds (each PGD restart run separately on all examples)."""
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    robust = {}
    for name, stack in attacks.items():
        alive = clean.clone()
        for attack in stack:
            runs = [attack]
            if isinstance(attack, PGD) and attack.restarts > 1:
                runs = [PGD(attack.threat, attack.steps, attack.step_size, 1)] * attack.restarts
            for run in runs:
                x_adv = run(model, x, y).x_adv
                with torch.no_grad():
                    alive &= model(x_adv).argmax(1) == y
        robust[name] = alive
    union = clean.clone()
    for v in robust.values():
        union &= v
    out = {"clean": clean.float().mean().item()}
    out.update({k: v.float().mean().item() for k, v in robust.items()})
    out["union"] = union.float().mean().item()
    return out


def models(train_n):
    x, y = mnist_tensors(train_n, train=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        std, rob = CompactCNN(), CompactCNN()
    yield "standard (1 epoch)", fit(std, x, y, epochs=1)
    try:
        from advlab import zoo

        yield "zoo mnist-linf", zoo.load("mnist-linf")
    except Exception as err:  # the zoo model is not there yet: train a small one
        print(f"(zoo mnist-linf not available: {err}; training a small l_inf model instead)")
        fit(rob, x, y, epochs=1)
        yield "l_inf PGD-AT (2 epochs)", fit(rob, x, y, epochs=2,
                                             attack=PGD(Linf(0.3), steps=10, step_size=0.05))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--strength", default="standard")
    ap.add_argument("--train-n", type=int, default=20000)
    args = ap.parse_args()
    x, y = mnist_tensors(args.n)
    attacks = presets.attacks("mnist", args.strength)
    print(f"MNIST first {args.n} test images, '{args.strength}' attacks: "
          f"{ {k: len(v) for k, v in attacks.items()} } attacks per threat")
    for label, model in models(args.train_n):
        model.eval()
        t0 = time.perf_counter()
        full = naive(model, x, y, attacks)
        t1 = time.perf_counter()
        union = evaluate_union(model, (x, y), attacks, progress=False).as_dict()
        t2 = time.perf_counter()
        fast = evaluate_union(model, (x, y), attacks, per_threat=False, progress=False)
        t3 = time.perf_counter()
        print(f"\n{label}")
        print(f"  {'':8}{'naive':>8}{'union eval':>12}{'union only':>12}")
        for k in full:
            extra = f"{100 * fast.union_accuracy:11.1f}%" if k == "union" else ""
            print(f"  {k:8}{100 * full[k]:7.1f}%{100 * union[k]:11.1f}%{extra}")
        print(f"  time    {t1 - t0:7.1f}s{t2 - t1:11.1f}s{t3 - t2:11.1f}s")
        print(f"  speed-up over naive: {(t1 - t0) / (t2 - t1):.2f}x (per-threat), "
              f"{(t1 - t0) / (t3 - t2):.2f}x (union only)")


if __name__ == "__main__":
    main()
