"""Attacks on rotation-translation threats: the paper's exhaustive grid, random-k, and RT + l_p.

Spatial transforms are searched, not followed along gradients (Engstrom et al. 2019 found the
grid stronger on MNIST). Many transforms go through the model in one forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from ..threats import Affine, RotationTranslation
from .base import (
    AttackResult,
    attack_session,
    better,
    checked_step_size,
    misclassified,
    per_example_loss,
    take_step_size,
)
from .pgd import pgd_run

__all__ = ["grid_attack", "random_attack", "affine_grid_attack"]


def _search(model, x, y, threat, candidates, loss, max_batch, early_stop):
    """Try every row of ``candidates`` (T, 3) on every example; keep the best per example."""
    b, n = x.shape[0], candidates.shape[0]
    best_params = threat.zero(x)
    best_loss = torch.full((b,), float("-inf"), device=x.device, dtype=x.dtype)
    best_succ = torch.zeros(b, dtype=torch.bool, device=x.device)
    active = torch.arange(b, device=x.device)
    start = 0
    while start < n and active.numel() > 0:
        chunk = max(1, min(n - start, max_batch // active.numel()))
        cand = candidates[start:start + chunk]
        xs = x[active].repeat_interleave(chunk, dim=0)
        params = cand.repeat(active.numel(), 1)
        with torch.no_grad():
            logits = model(threat.perturb(xs, params))
            ys = y[active].repeat_interleave(chunk)
            losses = per_example_loss(logits, ys, loss, False).view(-1, chunk)
            succ = misclassified(logits, ys, False).view(-1, chunk)
            score = losses.masked_fill(succ, float("inf"))
            pick = score.argmax(dim=1)
            c_loss, c_succ = losses.gather(1, pick[:, None]).squeeze(1), succ.any(dim=1)
            upd = better(c_succ, c_loss, best_succ[active], best_loss[active])
            idx = active[upd]
            best_params[idx] = cand[pick[upd]]
            best_loss[idx], best_succ[idx] = c_loss[upd], c_succ[upd]
        start += chunk
        if early_stop:
            active = active[~best_succ[active]]
    return best_params, best_succ, best_loss


def _spatial_result(model, x, y, threat, params, loss):
    with torch.no_grad():
        x_adv = threat.perturb(x, params)
        logits = model(x_adv)
        losses = per_example_loss(logits, y, loss, False)
        return AttackResult(x_adv, misclassified(logits, y, False), losses, params)


def _check_threat(threat):
    if not isinstance(threat, RotationTranslation):
        raise TypeError(f"need a RotationTranslation threat, got {threat!r}")


def grid_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor,
    threat: RotationTranslation | None = None, loss: str = "ce",
    max_batch: int = 4096, early_stop: bool = True,
) -> AttackResult:
    """The paper's rotation-translation attack: every transform of ``threat.grid()``.

    x (B, C, H, W) in [0, 1], y (B,). Up to ``max_batch`` transformed images per forward pass;
    with ``early_stop``, examples already misclassified stop being tried. ``params`` in the result
    holds the chosen (angle, dx, dy) per example.
    """
    threat = threat or RotationTranslation()
    _check_threat(threat)
    with attack_session(model, x, y) as x:
        grid = threat.grid(device=x.device, dtype=x.dtype)
        params, _, _ = _search(model, x, y, threat, grid, loss, max_batch, early_stop)
        return _spatial_result(model, x, y, threat, params, loss)


def random_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor,
    threat: RotationTranslation | None = None, k: int = 10, loss: str = "ce",
    generator: torch.Generator | None = None,
) -> AttackResult:
    """The worst of ``k`` random transforms per example (cheap; the paper's training variant)."""
    threat = threat or RotationTranslation()
    _check_threat(threat)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    with attack_session(model, x, y) as x:
        b = x.shape[0]
        xs = x.repeat_interleave(k, dim=0)
        cand = threat.random_start(xs, generator)
        with torch.no_grad():
            ys = y.repeat_interleave(k)
            logits = model(threat.perturb(xs, cand))
            losses = per_example_loss(logits, ys, loss, False).view(b, k)
            succ = misclassified(logits, ys, False).view(b, k)
            pick = losses.masked_fill(succ, float("inf")).argmax(dim=1)
        params = cand.view(b, k, 3)[torch.arange(b, device=x.device), pick]
        return _spatial_result(model, x, y, threat, params, loss)


def affine_grid_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: Affine,
    steps: int = 20, step_size=None, loss: str = "ce", random_start: bool = False,
    generator: torch.Generator | None = None, early_stop: bool = True,
) -> AttackResult:
    """Rotation-translation + l_p noise: the l_p PGD runs on top of each transform of the grid.

    ``threat`` is ``Affine(RotationTranslation(...), lp, weight)``; the grid of the scaled
    rotation-translation part is tried transform by transform, each with ``steps`` PGD steps of
    the scaled l_p part, keeping the best per example (examples already fooled are skipped).
    """
    if not (isinstance(threat, Affine) and threat.spatial):
        raise TypeError("affine_grid_attack needs Affine(RotationTranslation(...), lp, weight)")
    with attack_session(model, x, y) as x:
        rt, lp = threat.parts
        size = checked_step_size(
            threat.default_step_size(steps) if step_size is None else step_size, x
        )
        b = x.shape[0]
        best = AttackResult(x.clone(), torch.zeros(b, dtype=torch.bool, device=x.device),
                            torch.full((b,), float("-inf"), device=x.device, dtype=x.dtype),
                            threat.zero(x))
        for p in rt.grid(device=x.device, dtype=x.dtype):
            if early_stop:
                idx = (~best.success).nonzero().squeeze(1)
            else:
                idx = torch.arange(b, device=x.device)
            if idx.numel() == 0:
                break
            xs, ys = x[idx], y[idx]
            th = threat.restrict(idx)  # per-example budgets and step sizes follow idx
            params = p.expand(xs.shape[0], 3).clone()
            base = rt.perturb(xs, params)
            noise = th.parts[1].random_start(base, generator) if random_start else lp.zero(base)
            best.merge(idx, pgd_run(model, xs, ys, th, (params, noise), steps,
                                    take_step_size(size, idx), loss, False))
    return best
