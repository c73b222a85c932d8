"""The l_inf ball {delta : ||delta||_inf <= eps}: every pixel moves by at most eps."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..projections import as_batch_eps
from .base import ThreatModel, as_view, batch_view, check_eps, clip_to_box, flat, warn_if_unbounded

__all__ = ["Linf"]


@dataclass(frozen=True)
class Linf(ThreatModel):
    """{delta : ||delta||_inf <= eps}; direction: the eps-free sign of the gradient."""

    eps: float = 0.3
    name = "linf"
    additive = True
    lp = math.inf

    def __post_init__(self):
        check_eps(self.eps)
        warn_if_unbounded(self, 1.0, "the largest l_inf distance between two images")

    def random_start(self, x, generator=None):
        u = torch.empty_like(x).uniform_(-1, 1, generator=generator)
        return clip_to_box(u * batch_view(self.eps_for(x), x), x)

    def direction(self, grad, x_adv=None, k=None):
        return grad.sign()

    def step(self, delta, grad, step_size, x=None, t=0):
        return delta + as_view(step_size, delta) * self.direction(grad)

    def project(self, delta, x):
        e = batch_view(self.eps_for(x), x)
        return clip_to_box(torch.maximum(torch.minimum(delta, e), -e), x)

    def noise(self, x, size=None, generator=None):
        """Random signs times ``size``: a corner of the ball."""
        e = self.eps_for(x) if size is None else as_batch_eps(size, x.shape[0], x)
        d = (torch.randint(0, 2, x.shape, generator=generator, device=x.device) * 2 - 1)
        return batch_view(e, x) * d.to(x.dtype)

    def diameter(self, x):
        return 1.0

    def norm(self, delta):
        return flat(delta).abs().amax(dim=1)

