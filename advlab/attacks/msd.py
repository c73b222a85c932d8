"""Multi steepest descent (MSD, Maini et al. 2020): one attack over several l_p balls at once.

Each step takes one gradient at x + delta and one steepest-ascent step of every threat from
delta (each projected on its own ball and the box), and moves to the candidate with the highest
loss. Used to train against the union of l_p threats (``advlab.train``, strategy "msd").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import AttackResult, frozen

__all__ = ["msd_attack"]


def msd_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, threats, steps: int, step_sizes,
) -> AttackResult:
    """Multi steepest descent (Maini et al. 2020) over l_p ``threats`` from delta = 0.

    Each step takes one gradient at x + delta, one steepest-ascent step of each threat from delta
    (projected on that threat's ball and the box), and keeps per example the candidate with the
    highest loss; the result is the highest-loss point seen over all steps. x (B, C, H, W), y (B,).
    No input checks (it runs at every training step); the model is frozen as for every attack.
    """
    x = x.detach()
    delta = torch.zeros_like(x)
    best_x = x.clone()
    best_loss = torch.full((x.shape[0],), float("-inf"), device=x.device, dtype=x.dtype)
    with frozen(model):
        for t in range(steps):
            x_adv = (x + delta).requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)
            with torch.no_grad():
                cands = [th.project(th.step(delta, grad, s, x, t), x)
                         for th, s in zip(threats, step_sizes, strict=True)]
                stacked = torch.stack(cands)  # (K, B, C, H, W)
                k, b = stacked.shape[:2]
                logits = model((x.unsqueeze(0) + stacked).flatten(0, 1))
                losses = F.cross_entropy(logits, y.repeat(k), reduction="none").view(k, b)
                loss, pick = losses.max(dim=0)
                delta = stacked[pick, torch.arange(b, device=x.device)]
                upd = loss > best_loss
                best_x[upd] = (x + delta)[upd]
                best_loss = torch.where(upd, loss, best_loss)
        with torch.no_grad():
            logits = model(best_x)
    return AttackResult(best_x, logits.argmax(1) != y, best_loss)
