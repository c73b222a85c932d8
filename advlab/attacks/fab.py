"""Targeted FAB (Croce & Hein 2020, "Minimally distorted adversarial examples with a fast
adaptive boundary attack"; AutoAttack's FAB-T): a minimum-norm attack that walks along the
linearised decision boundary instead of up a loss.

At the iterate x_k, with g(z) = f_t(z) - f_y(z) (target logit minus true logit; g >= 0 means
the target wins), FAB linearises the boundary {g = 0} and projects both x_k and the clean x onto
that hyperplane, each with the smallest l_p step that stays in the [0, 1] box:

    d_k = argmin ||d||_p  s.t.  g(x_k) + <grad g(x_k), d> >= 0,             x_k + d in [0, 1]^n
    d_0 = argmin ||d||_p  s.t.  g(x_k) + <grad g(x_k), x + d - x_k> >= 0,   x + d in [0, 1]^n

and moves to a mix of the two, biased towards the clean image so the result stays close to it,

    x_{k+1} = clip((1 - a)(x_k + eta d_k) + a (x + eta d_0)),
    a = min(|d_k| / (|d_k| + |d_0|), a_max)

with eta = 1.05 (overshoot the boundary a little) and a_max = 0.1. An iterate that is
misclassified is kept if it is the closest to x so far, and pulled back towards x,
x_k <- x + beta (x_k - x) with beta = 0.9, to look for a closer one. An evaluation counts the
example as broken when the closest misclassified point lies within the budget eps.

Each projection is exact, onto the hyperplane from either side (FAB's projection, not onto the
half-space: the clean x may lie on the far side of a boundary linearised at x_k): for l_inf the
step is sign(w) min(t, room) for the smallest t that reaches the hyperplane, for l_2 it is
sign(w) min(lambda |w|, room) (the KKT point), both solved from the sorted points where pixels
reach the box; for l_1 the cheapest coordinates (largest |w|) move to the box's edge first, the
last one partly (a fractional knapsack). ``room`` is how far the box lets each pixel move in the
direction that helps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..threats import ThreatModel
from .base import (
    AttackResult,
    attack_session,
    check_logits,
    into_threat,
    misclassified,
    own_generator,
    ranked_others,
)

__all__ = ["fab_targeted", "FABT", "project_halfspace"]

def project_halfspace(w: torch.Tensor, c: torch.Tensor, x: torch.Tensor, p: float,
                      lo: torch.Tensor | float = 0.0, hi: torch.Tensor | float = 1.0
                      ) -> torch.Tensor:
    """The smallest l_p step d with <w, d> >= c and x + d in [lo, hi] (rows of (B, n) tensors).

    w: (B, n) the hyperplane's normal; c: (B,) how far along w to go (c <= 0: d = 0, already
    there); x: (B, n) in [lo, hi]; p: 1, 2 or math.inf; lo, hi: the box, [0, 1] (the image box)
    unless given as floats or (B, n) tensors. Where the box does not allow <w, d> = c, d is the
    box's corner in w's direction (the closest the box gets). Returns (B, n).
    """
    if p not in (1, 2, math.inf):
        raise ValueError(f"p must be 1, 2 or math.inf, got {p}")
    room = torch.where(w > 0, hi - x, x - lo)  # how far each pixel may move in w's direction
    room = torch.where(w != 0, room.clamp_min(0), torch.zeros_like(room))
    a = w.abs()
    need = c.clamp_min(0)[:, None]
    if p == 1:  # fractional knapsack: the largest |w_i| first, each to the box's edge
        a_sorted, order = a.sort(dim=1, descending=True)
        gain = a_sorted * room.gather(1, order)
        before = gain.cumsum(dim=1) - gain  # what the coordinates before i already give
        part = ((need - before) / a_sorted.clamp_min(1e-30)).clamp(min=0)
        move = torch.minimum(part, room.gather(1, order))
        size = torch.zeros_like(a).scatter(1, order, move)
    else:
        # l_inf: size_i = min(t, room_i); l_2: size_i = min(t |w_i|, room_i). The gain
        # h(t) = sum_i |w_i| size_i(t) is piecewise linear and rising, with a kink where
        # coordinate i reaches its room, t_i = room_i / scale_i: sort the kinks, and on the piece
        # where h crosses ``need`` solve for t exactly (no bisection: tiny |w_i|, as on models
        # with masked gradients, put kinks at 1e12 and a bisection over [0, 1e12] misses by ~1)
        # in float64: the gains span 24 orders of magnitude, and float32 sums cancel
        a64, room64, need64 = a.double(), room.double(), need.double()
        scale = torch.ones_like(a64) if p == math.inf else a64
        kink = torch.where(scale > 0, room64 / scale.clamp_min(1e-300), torch.zeros_like(room64))
        kink, order = kink.sort(dim=1)
        full = (a64 * room64).gather(1, order).cumsum(dim=1)  # gain of the saturated coordinates
        slope = (a64 * scale).gather(1, order)
        left = slope.flip(1).cumsum(dim=1).flip(1) - slope  # slope of those not yet saturated
        h = full + kink * left  # h at each kink
        j = (h < need64).sum(dim=1, keepdim=True)  # the piece [kink_{j-1}, kink_j] holds the root
        prev = (j - 1).clamp_min(0)
        full_before = torch.where(j > 0, full.gather(1, prev), torch.zeros_like(need64))
        slope_before = torch.where(j > 0, left.gather(1, prev), slope.sum(dim=1, keepdim=True))
        t = ((need64 - full_before) / slope_before.clamp_min(1e-300)).clamp_min(0)
        t = torch.where(j >= a.shape[1], kink[:, -1:], t)  # beyond the box: all at the edge
        size = torch.minimum(t * scale, room64).to(a.dtype)
    size = torch.where(need > 0, size, torch.zeros_like(size))
    return size * w.sign()


def _project_hyperplane(w, c, x, p):
    """The smallest l_p step d with <w, d> = c and x + d in [0, 1] (the box's corner where it
    cannot reach): FAB projects onto the linearised boundary from either side."""
    side = torch.where(c < 0, -torch.ones_like(c), torch.ones_like(c))[:, None]
    return side * project_halfspace(side * w, c.abs(), x, p)


def _norm(d: torch.Tensor, p: float) -> torch.Tensor:
    return d.flatten(1).norm(p=p, dim=1)


def _run(model, x, y, t, p, steps, alpha_max, eta, beta, start=None):
    """One FAB run towards class t from ``start`` (default x); (B,) distances of the closest
    misclassified points found (inf where none) and those points (B, C, H, W)."""
    b = x.shape[0]
    flat_x = x.flatten(1)
    best = x.clone()
    best_dist = torch.full((b,), math.inf, dtype=x.dtype, device=x.device)
    cur = x.clone() if start is None else start.clone()
    rows = torch.arange(b, device=x.device)
    for _ in range(steps + 1):
        xg = cur.detach().requires_grad_(True)
        logits = model(xg)
        g = logits[rows, t] - logits[rows, y]
        (w,) = torch.autograd.grad(g.sum(), xg)
        with torch.no_grad():
            adv = misclassified(logits, y, False)
            dist = _norm(cur - x, p)
            closer = adv & (dist < best_dist)
            best = torch.where(closer[:, None, None, None], cur, best)
            best_dist = torch.where(closer, dist, best_dist)
            w, flat_cur = w.flatten(1), cur.flatten(1)
            d_k = _project_hyperplane(w, -g, flat_cur, p)
            d_0 = _project_hyperplane(w, -g - (w * (flat_x - flat_cur)).sum(dim=1), flat_x, p)
            n_k, n_0 = _norm(d_k, p), _norm(d_0, p)
            a = (n_k / (n_k + n_0).clamp_min(1e-12)).clamp(0, alpha_max)[:, None]
            step = ((1 - a) * (flat_cur + eta * d_k) + a * (flat_x + eta * d_0)).clamp(0, 1)
            back = flat_x + beta * (flat_cur - flat_x)  # found one: look closer to x
            cur = torch.where(adv[:, None], back, step).view_as(x)
    return best_dist, best


def fab_targeted(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    targets: int = 9,
    steps: int = 100,
    alpha_max: float = 0.1,
    eta: float = 1.05,
    beta: float = 0.9,
    skip: int = 0,
    restarts: int = 1,
    generator: torch.Generator | None = None,
    random_start: bool = False,
) -> AttackResult:
    """Targeted FAB (FAB-T) on ``Linf``, ``L2`` or ``L1``: ``restarts`` runs of ``steps`` steps
    per target.

    The targets are the ``targets`` classes with the highest clean logits after y (as for
    ``apgd_targeted``), less the ``skip`` highest of them (an earlier run's), each run only on
    the examples no earlier run has broken within the budget. The first run per target starts
    at x (AutoAttack's first restart, deterministic; with ``random_start`` it starts at random
    too), each further one at a random point of the ball of half the budget around x. On a
    model with masked gradients the closest points depend on where a run starts: on mnist-linf
    under l_2 2, of 4 images only AutoAttack's FAB-T had broken, runs from x broke 3 (closest
    points at 1.90-2.06) and runs from random starts 4 with one seed, 3 with two others.
    Cost: up to ``(targets - skip) * restarts * (steps + 1)`` forward and backward passes per
    example that stays robust.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K) logits; mode and requires_grad restored.
        x: (B, C, H, W) float images in [0, 1]. y: (B,) int64 labels.
        threat: an l_p ball (``Linf``, ``L2`` or ``L1``), budget a float or (B,).
        targets: how many target classes to try (AutoAttack: 9). steps: per target (100).
        alpha_max, eta, beta: FAB's constants (the paper's 0.1, 1.05, 0.9).
        skip: leave out the ``skip`` highest-ranked targets (0 <= skip < targets): with
            ``skip=3, targets=9`` the classes ranked 4th to 9th after y.
        restarts: runs per target (>= 1); all but the first start at random.
        random_start: the first run per target starts at random as well (a run that adds to
            earlier runs from x, which it would only repeat).
        generator: a ``torch.Generator`` on x's device for the random starts.

    Returns:
        AttackResult: x_adv (B, C, H, W) in the threat model and [0, 1], the closest
        misclassified point found where it lies within the budget, else x; success (B,) True
        where x_adv is misclassified; loss (B,) minus the l_p distance of the closest
        misclassified point found (-inf where none): higher is better for the attacker.
    """
    p = getattr(threat, "lp", None)
    if not (isinstance(threat, ThreatModel) and threat.additive and p in (1, 2, math.inf)):
        raise TypeError(f"FAB attacks l_p balls (Linf, L2 or L1), got {threat!r}")
    if steps < 1 or targets < 1:
        raise ValueError(f"need steps >= 1 and targets >= 1, got {steps} and {targets}")
    if restarts < 1:
        raise ValueError(f"need restarts >= 1 (runs per target), got {restarts}")
    if not 0 <= skip < targets:
        raise ValueError(f"skip must be in [0, targets) = [0, {targets}), got {skip}: it leaves "
                         "out the highest-ranked targets, and at least one must remain")
    with attack_session(model, x, y, probe=False) as x:
        with torch.no_grad():
            logits = model(x)
        check_logits(logits, y)
        ranked = ranked_others(logits, y)[:, skip:targets]
        eps = threat.eps_for(x)
        dist = torch.where(misclassified(logits, y, False), torch.zeros_like(eps),
                           torch.full_like(eps, math.inf))
        closest = x.clone()
        half = threat.scaled(0.5)
        for i, r in ((i, r) for i in range(ranked.shape[1]) for r in range(restarts)):
            todo = (dist > eps).nonzero().squeeze(1)  # one sync per run, not per step
            if todo.numel() == 0:
                break
            xs = x[todo]
            start = (None if r == 0 and not random_start
                     else xs + half.restrict(todo).random_start(xs, generator))
            d, pts = _run(model, xs, y[todo], ranked[todo, i], p, steps, alpha_max, eta,
                          beta, start)
            keep = d < dist[todo]
            dist[todo] = torch.where(keep, d, dist[todo])
            closest[todo] = torch.where(keep[:, None, None, None], pts, closest[todo])
        inside = (dist <= eps)[:, None, None, None]
        x_adv = into_threat(threat, x, torch.where(inside, closest, x))
        # FAB's points sit on the boundary (margins of 1e-4 and less), where evaluating them in
        # another batch can flip the label: past the boundary, away from x, as far as the budget
        # lets (at most 10% further), is the point kept where it is misclassified
        push = (eps / dist.clamp_min(1e-12)).clamp(max=1.1)[:, None, None, None]
        past = into_threat(threat, x, torch.where(inside, x + push * (closest - x), x))
        with torch.no_grad():
            success, beyond = (misclassified(model(t), y, False) for t in (x_adv, past))
        x_adv = torch.where(beyond[:, None, None, None], past, x_adv)
    return AttackResult(x_adv, success | beyond, -dist)


@dataclass(frozen=True)
class FABT:
    """Targeted FAB as a stateless attack object: ``FABT(L2(2.0), targets=9, steps=100)``;
    ``skip=3``: only the classes ranked 4th to ``targets``-th; ``restarts=3``: two more runs per
    target from random starts (see ``fab_targeted``). Without a ``generator``, each call seeds a
    local one with ``seed``."""

    threat: ThreatModel
    steps: int = 100
    targets: int = 9
    skip: int = 0
    restarts: int = 1
    random_start: bool = False
    seed: int = 0

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        if self.restarts > 1 or self.random_start:
            generator = own_generator(generator, self.seed, x)
        return fab_targeted(model, x, y, self.threat, self.targets, self.steps, skip=self.skip,
                            restarts=self.restarts, generator=generator,
                            random_start=self.random_start)
