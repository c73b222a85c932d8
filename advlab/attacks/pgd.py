"""FGSM and projected gradient descent (PGD) for any threat model.

PGD (Madry et al. 2018) maximises the loss over the threat model S:

    delta_0 = random point of S (or 0)
    delta_{t+1} = Proj_S( delta_t + alpha * steepest_ascent_S( grad_x L(f(x + delta_t), y) ) )

and keeps, per example, the best point it saw (misclassified first, else highest loss).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ..threats import Affine, Linf, RotationTranslation, ThreatModel, check_eps
from ._common import (
    AttackResult,
    better,
    check_inputs,
    check_logits,
    frozen,
    misclassified,
    per_example_loss,
)

__all__ = ["fgsm", "pgd", "FGSM", "PGD"]


def _where(mask: torch.Tensor, new, old):
    """Per-example select for tensors (B, ...) and tuples of them."""
    if isinstance(new, tuple):
        return tuple(_where(mask, n, o) for n, o in zip(new, old, strict=True))
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def _take(value, idx: torch.Tensor):
    if isinstance(value, tuple):
        return tuple(_take(v, idx) for v in value)
    return value[idx]


def _put(dest, idx: torch.Tensor, value):
    if isinstance(dest, tuple):
        for d, v in zip(dest, value, strict=True):
            _put(d, idx, v)
    else:
        dest[idx] = value


def _clone(value):
    return tuple(_clone(v) for v in value) if isinstance(value, tuple) else value.clone()


def _batch_size_of(step_size, x):
    if isinstance(step_size, tuple):
        return tuple(_batch_size_of(s, x) for s in step_size)
    if isinstance(step_size, torch.Tensor):
        check_eps(step_size, "step_size")
        return step_size.to(device=x.device, dtype=x.dtype)
    check_eps(step_size, "step_size")
    return step_size


def _restrict(threat, idx: torch.Tensor):
    """The threat with its per-example budgets restricted to the examples ``idx``."""
    if isinstance(threat, Affine):
        return replace(threat, a=_restrict(threat.a, idx), b=_restrict(threat.b, idx))
    eps = getattr(threat, "eps", None)
    if isinstance(eps, torch.Tensor) and eps.dim() == 1:
        return replace(threat, eps=eps[idx.to(eps.device)])
    return threat


def _restrict_size(step_size, idx: torch.Tensor):
    """Per-example step sizes restricted to the examples ``idx``."""
    if isinstance(step_size, tuple):
        return tuple(_restrict_size(s, idx) for s in step_size)
    if isinstance(step_size, torch.Tensor) and step_size.dim() == 1:
        return step_size[idx]
    return step_size


def fgsm(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps, targeted: bool = False,
    loss: str = "ce",
) -> AttackResult:
    """Fast gradient sign method (Goodfellow et al. 2015): x + eps * sign(grad), clipped to [0, 1].

    x (B, C, H, W) in [0, 1]; y (B,) labels (the targets if ``targeted``); eps float or (B,).
    """
    return pgd(model, x, y, Linf(eps), steps=1, step_size=eps, random_start=False,
               targeted=targeted, loss=loss)


def _run(model, x, y, threat, delta, steps, step_size, loss, targeted):
    """One PGD run from ``delta``; returns the best point per example."""
    best_x, best_delta = x.clone(), _clone(delta)
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
            best_x = _where(upd, x_adv.detach(), best_x)
            best_delta = _where(upd, delta, best_delta)
            best_loss = torch.where(upd, losses.detach(), best_loss)
            best_succ = best_succ | succ
            if t < steps:
                delta = threat.project(threat.step(delta, grad, step_size, x, t), x)
    return best_x, best_succ, best_loss, best_delta


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
    if isinstance(threat, RotationTranslation):
        raise TypeError(
            "rotation-translation is attacked by trying transforms, not by gradient steps: "
            "use advlab.attacks.grid_attack (the paper's 775-transform grid) or random_attack"
        )
    if not isinstance(threat, ThreatModel):
        raise TypeError(f"threat must be a ThreatModel such as Linf(0.3), got {threat!r}")
    if steps < 0 or restarts < 1:
        raise ValueError(f"need steps >= 0 and restarts >= 1, got {steps} and {restarts}")
    check_inputs(model, x, y)
    x = x.detach()
    step_size = _batch_size_of(
        threat.default_step_size(steps) if step_size is None else step_size, x
    )
    with frozen(model):
        check_logits(model(x[:8]), y)
        x_adv, succ, losses, params = None, None, None, None
        todo = torch.arange(x.shape[0], device=x.device)
        for r in range(restarts):
            xs, ys = x[todo], y[todo]
            th = threat if r == 0 else _restrict(threat, todo)  # per-example eps follow todo
            start = th.random_start(xs, generator) if random_start else th.zero(xs)
            size = step_size if r == 0 else _restrict_size(step_size, todo)
            run = _run(model, xs, ys, th, start, steps, size, loss, targeted)
            if r == 0:
                x_adv, succ, losses, params = run
            else:
                upd = better(run[1], run[2], succ[todo], losses[todo])
                idx = todo[upd]
                x_adv[idx] = run[0][upd]
                succ[idx], losses[idx] = run[1][upd], run[2][upd]
                _put(params, idx, _take(run[3], upd))
            if r + 1 < restarts:
                todo = (~succ).nonzero().squeeze(1)  # one sync per restart, not per step
                if todo.numel() == 0:
                    break
    return AttackResult(x_adv, succ, losses, params)


@dataclass(frozen=True)
class PGD:
    """PGD as a stateless attack object: ``PGD(Linf(0.3), steps=40)(model, x, y)``."""

    threat: ThreatModel
    steps: int = 40
    step_size: object = None
    restarts: int = 1
    random_start: bool = True
    loss: str = "ce"

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        return pgd(model, x, y, self.threat, self.steps, self.step_size, self.restarts,
                   self.random_start, self.loss, generator=generator)


@dataclass(frozen=True)
class FGSM:
    """FGSM as a stateless attack object."""

    eps: float

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        return fgsm(model, x, y, self.eps)

