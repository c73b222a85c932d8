"""How APGD adapts over a run: its checkpoints, the stages of a shrinking budget, and
AutoAttack's sparsity schedule for l1-APGD (``advlab.attacks.apgd``'s ``sparsity="l0"``).

advlab's l1-APGD picks the k pixels its sparse steps move from the 90% mass support of the best
point, at APGD's checkpoints (``advlab.attacks.apgd``). ``sparsity="l0"`` uses AutoAttack's way
instead (Croce & Hein's released l1-APGD, ``run_l0``): a Gaussian start projected onto the ball, k =
L0 of the best point / 1.5 checked every 4% of the steps, the step size reset to the full budget
when the best point got sparser and divided by 1.5 otherwise, no momentum. On images at the edge of
the budget the two break different ones (of 13 images that AutoAttack broke and the stored rows had
left standing, two seeds of advlab's way broke 4 and two of AutoAttack's 8, 9 together:
``benchmarks/l1_sparsity.py``), so the strong l_1 stack runs both.
"""

from __future__ import annotations

import math

import torch

from .base import AttackResult, better, misclassified

__all__ = ["checkpoints", "stage_steps", "loss_and_grad", "run_l0", "gaussian_start"]


def checkpoints(steps: int) -> list[int]:
    """The iterations (1..steps) at which APGD may halve its step size."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    out = sorted({math.ceil(q * steps - 1e-9) for q in p[1:] if q <= 1 + 1e-12})
    return [w for w in out if 0 < w <= steps]


def stage_steps(steps: int, stages: int) -> list[int]:
    """How ``steps`` split over the budgets of a shrinking schedule: 30% for each but the last,
    the rest (at least 40% for 3 stages) for the last, the budget that counts."""
    head = [math.ceil(0.3 * steps)] * (stages - 1)
    return head + [steps - sum(head)]


def _view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *([1] * (like.dim() - 1)))


def gaussian_start(threat, x, generator=None):
    """AutoAttack's l1-APGD start: Gaussian noise projected onto ``threat`` (ball and box)."""
    return threat.project(torch.empty_like(x).normal_(generator=generator), x)


def loss_and_grad(model, x, y, loss):
    """delta -> (loss (B,), its input gradient (B, ...), misclassified (B,)) at x + delta.

    ``loss``: a callable (logits (B, K), y (B,)) -> (B,) to maximise.
    """

    def forward(dl):
        xa = (x + dl).detach().requires_grad_(True)
        logits = model(xa)
        losses = loss(logits, y)
        (g,) = torch.autograd.grad(losses.sum(), xa)
        return losses.detach(), g.detach(), misclassified(logits.detach(), y, False)

    return forward


def run_l0(model, x, y, threat, delta, steps, loss, rho=None, momentum=None):
    """One l1-APGD run from ``delta`` with AutoAttack's sparsity schedule (``sparsity="l0"``),
    ``loss`` a callable (logits, y) -> (B,) to maximise;
    returns (x_best, success, loss_best). ``rho`` and ``momentum`` are not used: this schedule
    has no momentum and no loss-based checkpoints.

    Every 4% of the steps: s = L0 of the highest-loss point so far; steps then move the
    k = ceil(s / 1.5) coordinates with the largest |grad|; if s shrank by more than 5% since
    the last check, the step size goes back to the full budget and the iterate to that point,
    else it is divided by 1.5 (kept in [eps / 10, eps]). k starts at L0(delta) / 1.5 (about 7%
    of MNIST's pixels from ``gaussian_start``).
    """
    b, d = x.shape[0], x[0].numel()
    eps = threat.eps_for(x)
    forward = loss_and_grad(model, x, y, loss)

    def l0(dl):
        return (dl.flatten(1) != 0).sum(dim=1)

    def k_of(s):
        return torch.ceil(s.to(x.dtype) / 1.5).long().clamp(1, d)

    sp_old = l0(delta)
    k, every = k_of(sp_old), max(int(0.04 * steps), 1)
    eta = torch.ones(b, dtype=x.dtype, device=x.device)
    f, grad, succ = forward(delta)
    best_x, best_loss, best_succ = x + delta, f.clone(), succ.clone()
    max_delta, max_f, max_grad = delta.clone(), f.clone(), grad.clone()
    for t in range(steps):
        with torch.no_grad():
            step = _view(eta * eps, x) * threat.direction(grad, x + delta, k)
            delta = threat.project(delta + step, x)
        f, grad, succ = forward(delta)
        with torch.no_grad():
            upd = better(succ, f, best_succ, best_loss)
            best_x = torch.where(_view(upd, x), x + delta, best_x)
            best_loss, best_succ = torch.where(upd, f, best_loss), best_succ | succ
            up = f > max_f
            max_delta = torch.where(_view(up, x), delta, max_delta)
            max_grad = torch.where(_view(up, x), grad, max_grad)
            max_f = torch.where(up, f, max_f)
            if (t + 1) % every == 0:
                sp = l0(max_delta)
                sparser = sp.to(x.dtype) < 0.95 * sp_old.to(x.dtype)
                k, sp_old = k_of(sp), sp
                eta = torch.where(sparser, torch.ones_like(eta), eta / 1.5).clamp(0.1, 1.0)
                delta = torch.where(_view(sparser, x), max_delta, delta)
                grad = torch.where(_view(sparser, x), max_grad, grad)
    return AttackResult(best_x, best_succ, best_loss)
