"""FGSM and projected gradient descent (PGD) for any threat model.

PGD (Madry et al. 2018) maximises the loss over the threat model S:

    delta_0 = random point of S (or 0)
    delta_{t+1} = Proj_S( delta_t + alpha * steepest_ascent_S( grad_x L(f(x + delta_t), y) ) )

and keeps, per example, the best point it saw (misclassified first, else highest loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..threats import Linf, ThreatModel
from .base import (
    AttackResult,
    attack_session,
    best_of_restarts,
    better,
    checked_step_size,
    clone_perturbation,
    misclassified,
    own_generator,
    per_example_loss,
    take_step_size,
    where,
)

__all__ = ["fgsm", "pgd", "pgd_run", "FGSM", "PGD"]


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, targeted: bool = False,
    loss: str = "ce",
) -> AttackResult:
    """Fast gradient sign method (Goodfellow et al. 2015): x + eps * sign(grad), clipped to [0, 1].

    x (B, C, H, W) in [0, 1]; y (B,) labels (the targets if ``targeted``); eps float or (B,).
    """
    return pgd(model, x, y, Linf(eps), steps=1, step_size=eps, random_start=False,
               targeted=targeted, loss=loss)


def pgd_run(model, x, y, threat, delta, steps, step_size, loss="ce", targeted=False
            ) -> AttackResult:
    """One PGD run from the perturbation ``delta`` on a frozen model; the best point per example
    (its perturbation in ``params``). No input checks: ``pgd`` and the spatial attacks call it."""
    best_x, best_delta = x.clone(), clone_perturbation(delta)
    best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device, dtype=x.dtype)
    best_succ = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for t in range(steps + 1):
        x_adv = threat.perturb(x, delta).detach().requires_grad_(t < steps)
        logits = model(x_adv)
        losses = per_example_loss(logits, y, loss, targeted)
        if t < steps:
            (grad,) = torch.autograd.grad(losses.sum(), x_adv)
        with torch.no_grad():
            succ = misclassified(logits, y, targeted)
            upd = better(succ, losses.detach(), best_succ, best_loss)
            best_x = where(upd, x_adv.detach(), best_x)
            best_delta = where(upd, delta, best_delta)
            best_loss = torch.where(upd, losses.detach(), best_loss)
            best_succ = best_succ | succ
            if t < steps:
                delta = threat.project(threat.step(delta, grad, step_size, x, t), x)
    return AttackResult(best_x, best_succ, best_loss, best_delta)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    steps: int = 40,
    step_size=None,
    restarts: int = 1,
    random_start: bool = True,
    loss: str = "ce",
    targeted: bool = False,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """PGD with restarts on any l_p or affine threat model.

    Args:
        model: maps (B, C, H, W) images in [0, 1] to (B, K) logits. Its mode and its parameters'
            requires_grad are restored afterwards; works inside ``torch.no_grad()``.
        x: (B, C, H, W) float images in [0, 1]; dtype, device and memory format are kept.
        y: (B,) int64 true labels, or target labels if ``targeted``.
        threat: e.g. ``Linf(0.3)``, ``L2(2.0)``, ``L1(10.0)``, ``Affine(...)``.
        steps: gradient steps per restart. step_size: float, (B,) tensor, or None for the
            threat's default (a pair for ``Affine``).
        restarts: extra restarts run only on examples not yet successful.
        random_start: start at a random point of the threat model (else at zero).
        loss: "ce" or "margin". generator: a ``torch.Generator`` on x's device for the starts.

    Returns:
        AttackResult with x_adv (B, C, H, W), success (B,), loss (B,), params (the perturbation).
    """
    if not isinstance(threat, ThreatModel):
        raise TypeError(f"threat must be a ThreatModel such as Linf(0.3), got {threat!r}")
    if threat.searched:
        raise TypeError(
            f"{type(threat).__name__} is attacked by trying transforms, not by gradient steps: "
            "use advlab.attacks.grid_attack (the paper's 775-transform grid) or random_attack"
        )
    if steps < 0 or restarts < 1:
        raise ValueError(f"need steps >= 0 and restarts >= 1, got {steps} and {restarts}")
    with attack_session(model, x, y) as x:
        step_size = checked_step_size(
            threat.default_step_size(steps) if step_size is None else step_size, x
        )

        def run(todo, first):
            xs, ys = x[todo], y[todo]
            th = threat if first else threat.restrict(todo)  # per-example eps follow todo
            start = th.random_start(xs, generator) if random_start else th.zero(xs)
            size = step_size if first else take_step_size(step_size, todo)
            return pgd_run(model, xs, ys, th, start, steps, size, loss, targeted)

        return best_of_restarts(x.shape[0], x.device, restarts, run)


@dataclass(frozen=True)
class PGD:
    """PGD as a stateless attack object: ``PGD(Linf(0.3), steps=40)(model, x, y)``.

    Without a ``generator``, each call seeds a local one with ``seed`` (deterministic results;
    the global RNG is neither read nor advanced), as APGD and Square do.
    """

    threat: ThreatModel
    steps: int = 40
    step_size: object = None
    restarts: int = 1
    random_start: bool = True
    loss: str = "ce"
    seed: int = 0

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        generator = own_generator(generator, self.seed, x)
        return pgd(model, x, y, self.threat, self.steps, self.step_size, self.restarts,
                   self.random_start, self.loss, generator=generator)


@dataclass(frozen=True)
class FGSM:
    """FGSM as a stateless attack object."""

    eps: float

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        return fgsm(model, x, y, self.eps)

