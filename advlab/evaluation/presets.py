"""The paper's threat models and evaluation budgets, as named presets.

Tramèr & Boneh (2019) evaluate MNIST at l_inf 0.3, l_1 10, l_2 2 and rotation-translation
(+-3 px, +-30 degrees), and CIFAR10 at l_inf 4/255 and l_1 2000/255 (plus RT).
"""

from __future__ import annotations

from functools import partial

from ..attacks import APGD, PGD, Square, grid_attack
from ..attacks.apgd import APGDT
from ..attacks.boundary import BoundaryL1
from ..attacks.fab import FABT
from ..threats import RotationTranslation, ThreatModel, registry
from .strengths import STRENGTHS

__all__ = ["BUDGETS", "threats", "attacks", "trusted_attacks", "STRENGTHS"]

#: data set -> {threat name: budget}, read from the threat registry (``advlab.threats.registry``)
BUDGETS = registry.BUDGETS

# the strengths' steps, restarts and queries, and why: advlab.evaluation.strengths


def _budgets(dataset: str) -> dict:
    key = dataset.lower()
    if key not in BUDGETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {sorted(BUDGETS)}")
    return BUDGETS[key]


def threats(dataset: str = "mnist") -> dict[str, ThreatModel]:
    """The paper's threat models for ``dataset`` ("mnist" or "cifar10"), by name."""
    return {name: registry.make(name, budget) for name, budget in _budgets(dataset).items()}


def attacks(dataset: str = "mnist", strength: str = "standard", include=None,
            scale: float = 1.0) -> dict[str, list]:
    """Threat name -> list of attacks for ``evaluate_union``.

    ``include``: the threat names to keep (default all of ``threats(dataset)``).
    ``scale``: every budget times this factor (> 0), e.g. 0.5 for half the paper's budgets.
    """
    if strength not in STRENGTHS:
        raise ValueError(f"unknown strength {strength!r}; choose one of {sorted(STRENGTHS)}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0 (a factor on every budget), got {scale}")
    s = STRENGTHS[strength]
    out = {}
    for name, threat in threats(dataset).items():
        if include is not None and name not in include:
            continue
        threat = threat if scale == 1.0 else threat.scaled(scale)
        entry = registry.info(name)
        if threat.searched:  # rotation-translation: the grid of transforms
            n_rot, n_trans = s["rt_grid"]
            rt = RotationTranslation(threat.max_rot, threat.max_trans, n_rot, n_trans)
            out[name] = [partial(grid_attack, threat=rt)]
            continue
        stack = []
        if "apgd_steps" in s:  # first: the strongest attack per step leaves the fewest survivors
            if s.get("apgd_ce") and entry.apgd_loss != "ce":  # AutoAttack's APGD-CE, then ours
                stack.append(APGD(threat, steps=s["apgd_steps"], loss="ce"))
            stack.append(APGD(threat, steps=s["apgd_steps"], loss=entry.apgd_loss))
        if "apgdt_steps" in s:  # aims at each other class: finds what the runner-up hides
            stack.append(APGDT(threat, steps=s["apgdt_steps"], targets=s["targets"]))
        if "fab_steps" in s and name in s.get("no_pgd", ()):  # minimum norm, along the boundary
            stack.append(FABT(threat, steps=s["fab_steps"], targets=s["fab_targets"]))
        if name not in s.get("no_pgd", ()):
            stack.append(PGD(threat, steps=s[entry.pgd_steps], restarts=s["restarts"]))
        if "queries" in s:  # a threat's own budget (``l1_queries``) where it has one
            stack.append(Square(threat, queries=s.get(f"{name}_queries", s["queries"])))
        if "fab_more_targets" in s and name in s.get("no_pgd", ()):  # AutoAttack's 9 FAB-T targets
            stack.append(FABT(threat, steps=s["fab_steps"], targets=s["fab_more_targets"],
                              skip=s["fab_targets"]))
        if name in s.get("fab_random", ()):  # FAB-T again, from random starts
            stack.append(FABT(threat, steps=s["fab_steps"], targets=s["fab_more_targets"],
                              random_start=True))
        if name in s.get("square_final", ()):  # Square again at AutoAttack's 5000 queries
            stack.append(Square(threat, queries=s["final_queries"], seed=1))
        if name in s.get("boundary", ()):  # from an adversarial start along the boundary
            stack.append(BoundaryL1(threat, s["boundary_steps"], s["boundary_restarts"]))
        if name in s.get("shrink", ()):  # AutoAttack's l_1 version: a shrinking budget
            scales = s["shrink_scales"]
            for sparsity in s["shrink_sparsity"]:  # advlab's l1-APGD, then AutoAttack's own
                stack.append(APGD(threat, steps=s["apgd_steps"], restarts=s["shrink_restarts"],
                                  eps_scales=scales, sparsity=sparsity))
                stack.append(APGDT(threat, steps=s["apgdt_steps"], targets=s["shrink_targets"],
                                   eps_scales=scales, sparsity=sparsity))
        out[name] = stack
    if include is not None and set(include) - set(out):
        raise ValueError(f"unknown threats {sorted(set(include) - set(out))} in include; "
                         f"the {dataset} threats are {list(threats(dataset))}")
    return out


def trusted_attacks(dataset: str = "mnist", include=None, queries: int | None = None
                    ) -> dict[str, list]:
    """The evaluation behind every robust number we publish: ``attacks(dataset, "strong")``.

    Per l_p threat: APGD (for l_inf and l_2 with the CE loss, then with the DLR loss; l1-APGD with
    the exact l_1-ball-and-box projection for l_1), then targeted APGD (targeted DLR loss, 100
    steps at each of the 9 classes ranked highest after the true one), then for l_inf and l_2
    targeted FAB (100 steps at each of the 3 classes ranked highest), for l_1 PGD (SLIDE, 200
    steps, 3 restarts), then the gradient-free Square Attack (1000 queries, 5000 for l_1, or
    ``queries`` for every threat), then for l_inf and l_2 targeted FAB at the classes ranked 4th
    to 9th (AutoAttack's FAB-T aims at all 9), for l_2 then FAB-T at all 9 from random starts
    in the ball of half the budget, then Square again at 5000 queries (another seed), and for
    l_1 last the boundary attack
    (``BoundaryL1``: a decision-based start, then 50 steps along the decision boundary, 6
    restarts), then AutoAttack's own l_1 attacks: l1-APGD with a budget shrinking from 3 x eps
    to eps (5 restarts) and targeted l1-APGD so (5 target classes), first with advlab's choice of
    the coordinates to step on, then with AutoAttack's (``sparsity="l0"``);
    rotation-translation: the full 775-transform grid. Each attack only runs on the examples the
    ones before it left standing.
    """
    out = attacks(dataset, "strong", include)
    if queries is None:
        return out
    return {name: _one_square(stack, queries) for name, stack in out.items()}


def _one_square(stack: list, queries: int) -> list:
    """The stack with a single Square at ``queries``, where its first Square stood."""
    kept, seen = [], False
    for attack in stack:
        if isinstance(attack, Square):
            if seen:
                continue
            seen, attack = True, Square(attack.threat, queries=queries)
        kept.append(attack)
    return kept
