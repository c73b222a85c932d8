"""The affine set of two perturbation types (Tramèr & Boneh 2019) and the table of notebook 6.

The paper's affine combination of two perturbation sets S_a and S_b is

    S_affine = { w r_a + (1 - w) r_b : r_a in S_a, r_b in S_b, w in [0, 1] },

so it contains both pure types (w = 1: S_a, w = 0: S_b). An input counts as robust to it when it
survives the worst case over a grid of weights that includes 0 and 1: the pure types with their
own attack stacks (e.g. ``presets.attacks(..., "lite")``, gradient-free Square included)
and every interior weight with ``mixture_attacks``. Hence, per input and by construction,

    robust to the mixture  =>  robust to "one of two" (the union)  =>  robust to each type,

and the table's accuracies satisfy mixture <= one of two <= each single type.

``mixture_attacks(a, b, w)`` attacks ``Affine(a, b, w)`` (budgets scaled by w and 1 - w) with a
gradient attack and a gradient-free one, so that a model that masks its gradients (notebook 5)
cannot hide the mixture's worst case behind them:

- two l_p types: PGD alternating between the parts, then Square Attack on the first part at its
  scaled budget followed by Square on the second part on top of it;
- rotation-translation and l_p: a grid of transforms of the scaled RT part with l_p PGD on top of
  each (``affine_grid_attack``; the grid itself is a search, gradient-free), then Square on the
  l_p part on top of the transform the grid found.

Every output is checked against the affine set (each part within its scaled budget, the image in
[0, 1]); an attack that leaves it raises. ``python -m advlab.zoo.affine_table`` (or its old name
``python -m advlab.affine_eval``) measures the table on the zoo models and writes
``advlab/evaluation/affine_stored.py``, the numbers notebook 6 shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..attacks import PGD, AttackResult, Square, affine_grid_attack
from ..threats import Affine, RotationTranslation, ThreatModel

__all__ = ["WEIGHTS", "PAIRS", "mixture_attacks", "affine_row", "check_row"]

# The weights of the first type: 0 and 1 are the pure types, the others the mixtures.
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
# The pairs of notebook 6 (the spatial type first); advlab.zoo.affine_table names the zoo models
# each is measured on.
PAIRS = {"rt+linf": ("rt", "linf"), "linf+l1": ("linf", "l1")}


@dataclass(frozen=True)
class _Checked:
    """An attack on ``threat`` (an Affine) whose outputs must lie in the affine set."""

    attack: object
    threat: Affine
    label: str

    def __call__(self, model, x, y) -> AttackResult:
        res = self.attack(model, x, y)
        ok = self.threat.contains_parts(x, res.params)
        if not bool(ok.all()):
            raise RuntimeError(f"{self.label} returned {int((~ok).sum())} inputs outside the "
                               f"affine set {self.threat}; this is a bug in the attack")
        return res

    def __repr__(self) -> str:
        return self.label


def _lp_squares(threat: Affine, queries: int):
    """Square on the first l_p part (scaled budget), then Square on the second part on top."""
    pa, pb = threat.parts

    def run(model, x, y):
        first = Square(pa, queries=queries)(model, x, y)
        second = Square(pb, queries=queries, seed=1)(model, first.x_adv, y)
        return AttackResult(second.x_adv, second.success, second.loss,
                            (first.x_adv - x, second.x_adv - first.x_adv))
    return run


def _grid_square(threat: Affine, steps: int, queries: int):
    """The RT grid with l_p PGD on top; where that fails, Square on the l_p part over the
    transform the grid found (one attack, so the grid is searched once)."""
    rt, lp = threat.parts

    def run(model, x, y):
        grid = affine_grid_attack(model, x, y, threat=threat, steps=steps)
        left = (~grid.success).nonzero().flatten()
        if left.numel() == 0:
            return grid
        params, noise = grid.params[0].clone(), grid.params[1].clone()
        base = rt.perturb(x[left], params[left])
        sq = Square(lp, queries=queries)(model, base, y[left])
        won = left[sq.success]
        noise[won] = (sq.x_adv - base)[sq.success]
        x_adv, success, loss = grid.x_adv.clone(), grid.success.clone(), grid.loss.clone()
        x_adv[won], success[won], loss[won] = sq.x_adv[sq.success], True, sq.loss[sq.success]
        return AttackResult(x_adv, success, loss, (params, noise))
    return run


def mixture_attacks(a: ThreatModel, b: ThreatModel, weight: float, steps: int = 10,
                    queries: int = 100, n_rot: int = 5, n_trans: int = 3) -> list:
    """Attacks on ``Affine(a, b, weight)`` for ``evaluate_union``, 0 < weight < 1.

    a: an l_p threat or a RotationTranslation (whose scaled grid has ``n_rot`` angles and
    ``n_trans`` x ``n_trans`` shifts), b: an l_p threat, at their full budgets. ``steps``: PGD
    steps on the l_p part (twice as many for two l_p parts, which alternate); ``queries``: per
    Square run. Returns the attacks (a gradient one and a gradient-free one), each checked.
    """
    if not 0 < weight < 1:
        raise ValueError(f"a mixture needs 0 < weight < 1 (0 and 1 are the pure types, attacked "
                         f"with their own stacks), got {weight}")
    if isinstance(a, RotationTranslation):
        a = RotationTranslation(a.max_rot, a.max_trans, n_rot, n_trans)
        threat = Affine(a, b, weight)
        attacks = [(_grid_square(threat, steps, queries), "grid + PGD, then Square")]
    else:
        threat = Affine(a, b, weight)
        attacks = [(PGD(threat, steps=2 * steps), "PGD"),
                   (_lp_squares(threat, queries), "Square, then Square")]
    return [_Checked(att, threat, f"{label} on {threat.a.name}+{threat.b.name} at {weight:g}")
            for att, label in attacks]


def affine_row(model, data, singles: dict, a: str, b: str, weights=WEIGHTS,
               dataset: str = "mnist", **mix) -> dict:
    """Accuracies of ``model`` on ``data`` = (x, y) for one pair of types, as fractions.

    singles: threat name -> attack stack (``presets.attacks``), with entries ``a`` and
    ``b``; the mixtures use the paper's budgets of ``dataset`` (``presets.threats``).
    ``mix``: keyword arguments of ``mixture_attacks``. Returns {"clean", a, b, "one of two",
    "mixture", "n", "fallen": {weight: inputs that survived both types and fell to it}}.
    """
    from .presets import threats
    from .union import evaluate_union

    if 0.0 not in weights or 1.0 not in weights:
        raise ValueError(f"the weights must include 0 and 1 (the pure types), got {weights}")
    x, y = data
    pure = evaluate_union(model, (x, y), {a: singles[a], b: singles[b]}, progress=False,
                          keep_worst=False)
    standing = pure.clean & pure.robust[a] & pure.robust[b]
    one_of_two = standing.float().mean().item()
    known = threats(dataset)
    fallen = {}
    for w in sorted(weights):
        if w in (0.0, 1.0):
            continue
        idx = standing.nonzero().flatten()
        if idx.numel() == 0:
            fallen[w] = 0
            continue
        idx_d = idx.to(x.device)
        res = evaluate_union(model, (x[idx_d], y[idx_d]),
                             {"mix": mixture_attacks(known[a], known[b], w, **mix)},
                             progress=False, keep_worst=False)
        fell = ~res.robust["mix"]
        standing[idx[fell]] = False
        fallen[w] = int(fell.sum())
    return {"clean": pure.clean_accuracy, a: pure.accuracy(a), b: pure.accuracy(b),
            "one of two": one_of_two, "mixture": standing.float().mean().item(),
            "n": pure.n, "fallen": fallen}


def check_row(row: dict, a: str, b: str, tol: float = 1e-9) -> None:
    """Raise unless mixture <= one of two <= each single type <= clean (fractions)."""
    chain = [("mixture", row["mixture"]), ("one of two", row["one of two"]),
             (f"{a} and {b}", min(row[a], row[b])), ("clean", row["clean"])]
    for (lo_name, lo), (hi_name, hi) in zip(chain, chain[1:], strict=False):
        if not lo <= hi + tol or math.isnan(lo):
            raise AssertionError(f"{lo_name} {lo:.4f} is above {hi_name} {hi:.4f}: {row}")
