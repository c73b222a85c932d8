"""An l_1 attack that never needs a useful gradient at x: a decision-based start, then a walk
along the decision boundary towards x (in the spirit of Brendel et al. 2019's boundary attacks).

Gradient attacks start at x. A model whose gradient there is masked (an l_inf-trained MNIST
model thresholds its input, so small changes do nothing) leaves them with no direction, while
the boundary further out still has an informative normal. So, per image and restart:

1. Start, decision-based: salt-and-pepper noise of rising density (each pixel set to 0 or 1
   with probability p, p = 1/levels, 2/levels, ..., 1) until the label is wrong.
2. Sparsify: reset the noisy pixels to x in random order, 16, then 4, then 1 at a time, keeping
   each reset that leaves the label wrong. This gives a sparse adversarial point z, usually far
   closer to x in l_1 than the noise was.
3. Walk: with g(z) = max_{j != y} f_j(z) - f_y(z) (> 0 where z is misclassified) and its
   gradient w, solve the linearised problem in a trust region of radius r around z,

       z' = argmin ||z' - x||_1  s.t.  g(z) + <w, z' - z> >= tau,  z' in [0, 1]^n,
                                       |z'_i - z_i| <= r,

   exactly: from p = clip(x, z - r, z + r), the region's closest point to x, every move costs
   l_1 distance at the rate 1, so the coordinates with the largest |w_i| move first, each as far
   as the region lets it, until the linearised g reaches tau (a fractional knapsack;
   ``fab.project_halfspace`` with the region as its box). Where z' is misclassified it becomes
   z and r grows (x 1.5, at most 1); where not, z moves to the last misclassified point of a
   bisection on the segment [z, z'] and r halves. The margin tau > 0 keeps the step's
   curvature error from undoing it (aimed at 0, the walk stalls on the boundary); it shrinks
   over five phases, 8%, 4%, 1.5%, 0.4% of the clean logits' spread and 0, each phase followed
   by one more pass of resets to x. Each step aims at whichever of the ``classes`` classes
   ranked highest at z gives the closest linearised point (on a linear model, with every
   class, the walk ends at the exact minimum).

Every z is misclassified, so the result is the closest point found; it counts where it lies
within the budget. Restarts draw new noise and a new reset order and only run on the images no
earlier restart broke within the budget (benchmarks/boundary_restarts.py: how the breaks grow
with restarts on a zoo model's images the rest of the trusted l_1 stack left standing). Cost
per image and restart: ``levels`` forward passes, about one per changed pixel for the resets,
and per walk step one forward and backward pass on ``classes`` copies and 1 + ``bisections``
forward passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..threats import ThreatModel
from .base import AttackResult, attack_session, into_threat, misclassified, own_generator
from .fab import project_halfspace

__all__ = ["boundary_l1", "BoundaryL1", "salt_and_pepper", "sparsify"]

# the walk's phases aim the linearised margin at these fractions of the clean logits' spread
_TARGETS = (0.08, 0.04, 0.015, 0.004, 0.0)


def _phase_steps(steps: int, phase: int) -> int:
    """The walk's ``steps`` split over the phases of ``_TARGETS`` (the first ones get the rest)."""
    n = len(_TARGETS)
    return steps // n + (phase < steps % n)


def _wrong(model, z, y):
    with torch.no_grad():
        return misclassified(model(z), y, False)


def salt_and_pepper(model: nn.Module, x: torch.Tensor, y: torch.Tensor, levels: int,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) the first misclassified noisy image per example at rising densities, x where
    none was, and (B,) bool which were found. ``levels`` forward passes."""
    z, found = x.clone(), torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for k in range(1, levels + 1):
        hit = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < k / levels
        salt = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < 0.5
        cand = torch.where(hit, salt.to(x.dtype), x)
        new = _wrong(model, cand, y) & ~found
        z = torch.where(new[:, None, None, None], cand, z)
        found |= new
    return z, found


def _reset_pass(model, x, y, fz, ok, generator, block):
    """One pass over the changed pixels of fz (B, n), in random order, ``block`` at a time:
    each block reset to x where the label stays wrong. One forward pass per block."""
    fx = x.flatten(1)
    changed = (fz != fx) & ok[:, None]
    keys = torch.rand(fz.shape, generator=generator, device=x.device)
    order = torch.where(changed, keys, torch.full_like(keys, 2.0)).argsort(dim=1)
    for j in range(0, int(changed.sum(dim=1).max()), block):  # one sync per pass
        i = order[:, j:j + block]
        live = changed.gather(1, i)
        cand = fz.scatter(1, i, torch.where(live, fx.gather(1, i), fz.gather(1, i)))
        keep = live.any(dim=1) & _wrong(model, cand.view_as(x), y)
        fz = torch.where(keep[:, None], cand, fz)
    return fz


def sparsify(model: nn.Module, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
             generator: torch.Generator, blocks: tuple[int, ...] = (16, 4, 1)) -> torch.Tensor:
    """z (B, C, H, W) with as many of its changed pixels reset to x as keep it misclassified:
    one pass ``blocks[0]`` pixels at a time, then one per further block size. Rows where z is
    not misclassified come back unchanged. One forward pass per block tried."""
    fz = z.flatten(1).clone()
    ok = _wrong(model, z, y)
    for block in blocks:
        fz = _reset_pass(model, x, y, fz, ok, generator, block)
    return fz.view_as(x)


def _margins(model, z, y, k):
    """For the k classes j != y with the highest logits at z: the margins
    g_j(z) = f_j(z) - f_y(z), (B, k), and their gradients, (B, k, n); one backward pass."""
    b = z.shape[0]
    with torch.no_grad():
        top = model(z).scatter(1, y[:, None], -math.inf).topk(k, dim=1).indices  # (B, k)
    zg = z.detach().repeat_interleave(k, dim=0).requires_grad_(True)
    out = model(zg)
    g = out.gather(1, top.reshape(-1, 1)) - out.gather(1, y.repeat_interleave(k)[:, None])
    (w,) = torch.autograd.grad(g.sum(), zg)
    return g.detach().view(b, k), w.view(b, k, -1)


def _step(fx, fz, g, w, r, target):
    """The trust-region step (see above) towards each of the k classes of ``g`` (B, k) and
    ``w`` (B, k, n); the one that lands closest to x, (B, n)."""
    b, k, n = w.shape
    lo, hi = (fz - r).clamp(0, 1), (fz + r).clamp(0, 1)
    p = torch.minimum(torch.maximum(fx, lo), hi)
    need = target[:, None] - (g + (w * (p - fz)[:, None]).sum(dim=2))  # (B, k)
    rep = lambda v: v.repeat_interleave(k, dim=0)  # noqa: E731
    cand = rep(p) + project_halfspace(w.reshape(b * k, n), need.reshape(-1), rep(p), 1,
                                      rep(lo), rep(hi))
    cand = cand.view(b, k, n)
    pick = (cand - fx[:, None]).abs().sum(dim=2).argmin(dim=1)
    return cand[torch.arange(b, device=fx.device), pick]


def _walk(model, x, y, z, steps, bisections, target, classes):
    """``steps`` trust-region steps along the boundary from the misclassified z (see above),
    aiming the linearised margin at ``target`` (B,) >= 0 rather than 0, so that the step's
    curvature error does not undo it."""
    fx = x.flatten(1)
    fz = z.flatten(1).clone()
    k = min(classes, _num_classes(model, z) - 1)
    r = torch.ones(fz.shape[0], 1, device=x.device, dtype=x.dtype)
    for _ in range(steps):
        g, w = _margins(model, fz.view_as(x), y, k)
        with torch.no_grad():
            nxt = _step(fx, fz, g, w, r, target)
            took = _wrong(model, nxt.view_as(x), y)
            t_lo, t_hi = torch.zeros_like(target), torch.ones_like(target)
            for _ in range(bisections):  # where nxt is not misclassified: the segment [z, nxt]
                mid = (t_lo + t_hi) / 2
                wrong = _wrong(model, (fz + mid[:, None] * (nxt - fz)).view_as(x), y)
                t_hi, t_lo = torch.where(wrong, t_hi, mid), torch.where(wrong, mid, t_lo)
            t = torch.where(took, torch.ones_like(t_lo), t_lo)[:, None]
            fz = fz + t * (nxt - fz)
            r = torch.where(took[:, None], (r * 1.5).clamp(max=1.0), r / 2)
    return fz.view_as(x)


def _num_classes(model, z):
    with torch.no_grad():
        return model(z[:1]).shape[1]


def _spread(model, x):
    """(B,) max minus min logit at x: the scale of the margins the walk aims at."""
    with torch.no_grad():
        logits = model(x)
    return logits.amax(dim=1) - logits.amin(dim=1)


def boundary_l1(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    steps: int = 50,
    restarts: int = 6,
    levels: int = 100,
    bisections: int = 3,
    classes: int = 3,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Salt-and-pepper start, sparsified, then ``steps`` steps along the boundary (see the
    module docstring), ``restarts`` times with new noise; the closest misclassified point.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K) logits; mode and requires_grad restored.
        x: (B, C, H, W) float images in [0, 1]. y: (B,) int64 labels.
        threat: an ``L1`` ball, budget a float or (B,).
        steps: walk steps per restart (>= 0). restarts: new starts, each on the images not yet
            broken within the budget (>= 1). levels: noise densities tried for a start.
        bisections: per walk step, on the segment to a step that is not misclassified.
        classes: each walk step aims at whichever of the classes ranked highest at the
            current point (this many) gives the closest linearised point.
        generator: the noise and the reset order's random numbers (default: seeded 0).

    Returns:
        AttackResult: x_adv (B, C, H, W) in the l_1 ball and [0, 1], the closest misclassified
        point found where it lies within the budget, else x; success (B,) where x_adv is
        misclassified; loss (B,) minus the l_1 distance of that point (-inf where none found).
    """
    if not (isinstance(threat, ThreatModel) and getattr(threat, "lp", None) == 1):
        raise TypeError(f"boundary_l1 attacks an l_1 ball (L1), got {threat!r}")
    if steps < 0 or restarts < 1 or levels < 1 or bisections < 0:
        raise ValueError("need steps >= 0, restarts >= 1, levels >= 1 and bisections >= 0; "
                         f"got {steps}, {restarts}, {levels}, {bisections}")
    gen = own_generator(generator, 0, x)
    with attack_session(model, x, y) as x:
        eps = threat.eps_for(x)
        dist = torch.full((x.shape[0],), math.inf, device=x.device, dtype=x.dtype)
        closest = x.clone()
        scale = _spread(model, x)
        for _ in range(restarts):
            todo = (dist > eps).nonzero().squeeze(1)  # one sync per restart
            if todo.numel() == 0:
                break
            d, z = _one_start(model, x[todo], y[todo], gen, steps, levels, bisections,
                              scale[todo], classes)
            keep = d < dist[todo]
            dist[todo] = torch.where(keep, d, dist[todo])
            closest[todo] = torch.where(keep[:, None, None, None], z, closest[todo])
        inside = dist <= eps
        x_adv = into_threat(threat, x, torch.where(inside[:, None, None, None], closest, x))
        success = _wrong(model, x_adv, y)
    return AttackResult(x_adv, success, -dist)


def _one_start(model, x, y, gen, steps, levels, bisections, scale, classes):
    """One restart: (B,) l_1 distances of the misclassified points found (inf where none) and
    the points (B, C, H, W)."""
    z, found = salt_and_pepper(model, x, y, levels, gen)
    z = sparsify(model, x, y, z, gen)
    for phase, frac in enumerate(_TARGETS):  # a wide margin first, then a thin one
        z = _walk(model, x, y, z, _phase_steps(steps, phase), bisections, frac * scale,
                  classes)
        z = sparsify(model, x, y, z, gen, blocks=(1,))
    d = (z - x).flatten(1).abs().sum(dim=1)
    return torch.where(found & _wrong(model, z, y), d, torch.full_like(d, math.inf)), z


@dataclass(frozen=True)
class BoundaryL1:
    """``boundary_l1`` as a stateless attack object: ``BoundaryL1(L1(10.0), steps=50)``."""

    threat: ThreatModel
    steps: int = 50
    restarts: int = 6

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        return boundary_l1(model, x, y, self.threat, self.steps, self.restarts,
                           generator=generator)
