"""The l_2 ball {delta : ||delta||_2 <= eps}."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..projections import as_batch_eps, project_l2_ball
from .base import ThreatModel, as_view, batch_view, clip_to_box, flat, warn_if_unbounded

__all__ = ["L2"]


@dataclass(frozen=True)
class L2(ThreatModel):
    """{delta : ||delta||_2 <= eps}; direction grad / ||grad||_2 (zero gradient: no step)."""

    eps: float = 2.0
    name = "l2"
    additive = True
    lp = 2

    def eps_for(self, x: torch.Tensor) -> torch.Tensor:
        d = math.prod(x.shape[1:])
        warn_if_unbounded(self, self.diameter(x), f"the l_2 diameter of {d}-pixel images",
                          once=True)
        return super().eps_for(x)

    def random_start(self, x, generator=None):
        g = torch.empty_like(x).normal_(generator=generator)
        g = g / batch_view(flat(g).norm(dim=1).clamp_min(1e-12), x)
        d = flat(x).shape[1]
        u = torch.empty(x.shape[0], dtype=x.dtype, device=x.device).uniform_(generator=generator)
        radius = self.eps_for(x) * u.pow(1.0 / d)
        return self.project(g * batch_view(radius, x), x)

    def direction(self, grad, x_adv=None, k=None):
        """grad / ||grad||_2 per example, 0 where grad is 0. Rescaled by the largest |g_i| first:
        a norm floor (or squares underflowing in float32) would shrink the steps of confidently
        classified examples to nothing, so gradients of size 1e-20 give the same direction."""
        g = flat(grad)
        peak = g.abs().amax(dim=1, keepdim=True)
        g = g / torch.where(peak > 0, peak, torch.ones_like(peak))
        unit = g / g.norm(dim=1, keepdim=True).clamp_min(1)  # norm >= 1 unless g == 0
        return unit.view_as(grad)

    def step(self, delta, grad, step_size, x=None, t=0):
        return delta + as_view(step_size, delta) * self.direction(grad)

    def project(self, delta, x):
        out = project_l2_ball(flat(delta), self.eps_for(x))
        return clip_to_box(out.view_as(delta), x)

    def noise(self, x, size=None, generator=None):
        """A uniformly random direction of l_2 norm ``size``."""
        e = self.eps_for(x) if size is None else as_batch_eps(size, x.shape[0], x)
        g = torch.empty_like(x).normal_(generator=generator)
        g = g / batch_view(flat(g).norm(dim=1).clamp_min(1e-12), x)
        return batch_view(e, x) * g

    def diameter(self, x):
        return math.sqrt(math.prod(x.shape[1:]))

    def norm(self, delta):
        return flat(delta).norm(dim=1)
