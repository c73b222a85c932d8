"""The l_1 ball {delta : ||delta||_1 <= eps} and its sparse steepest ascent (SLIDE)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..projections import as_batch_eps, project_l1_ball, project_l1_box
from .base import ThreatModel, as_view, check_eps, clip_to_box, flat, warn_if_unbounded

__all__ = ["L1"]


@dataclass(frozen=True)
class L1(ThreatModel):
    """{delta : ||delta||_1 <= eps} with the SLIDE step of Tramèr & Boneh (2019).

    SLIDE: drop gradient coordinates that push out of the [0, 1] box, keep those whose |g| is at or
    above the per-example ``q``-th percentile, and step by ``step_size`` split equally over them
    (each with the sign of g). ``box_projection="exact"`` projects onto the intersection of the
    l_1 ball and the box (as l1-APGD does); ``"clip"`` projects onto the ball and then clips.
    """

    eps: float = 10.0
    q: float = 99.0
    box_projection: str = "exact"
    name = "l1"
    additive = True
    lp = 1
    sparse = True
    apgd_eta = 1.0  # l1-APGD starts with a full-budget step

    def eps_for(self, x: torch.Tensor) -> torch.Tensor:
        d = math.prod(x.shape[1:])
        warn_if_unbounded(self, self.diameter(x), f"the l_1 diameter of {d}-pixel images",
                          once=True)
        return super().eps_for(x)

    def __post_init__(self):
        check_eps(self.eps)
        if not 0 <= self.q < 100:
            raise ValueError(f"q is a percentile in [0, 100), got {self.q}")
        if self.box_projection not in ("exact", "clip"):
            raise ValueError("box_projection must be 'exact' or 'clip'")

    def random_start(self, x, generator=None):
        b, d = flat(x).shape
        e = torch.empty(b, d + 1, dtype=x.dtype, device=x.device).exponential_(generator=generator)
        simplex = e[:, :d] / e.sum(dim=1, keepdim=True)  # uniform in {u >= 0, sum(u) <= 1}
        signs = torch.empty_like(simplex).bernoulli_(0.5, generator=generator) * 2 - 1
        delta = (simplex * signs * self.eps_for(x)[:, None]).view_as(x)
        return self.project(delta, x)

    def direction(self, grad, x_adv=None, k=None):
        """Sparse ascent direction of l_1 norm 1: sign(g) / m on the m coordinates with the
        largest |g| (ties included) that the box lets move (all of them when ``x_adv`` is None).

        ``k``: how many coordinates, an int or a (B,) tensor (l1-APGD adapts it); None: SLIDE's,
        those at or above the ``q``-th percentile of |g|.
        """
        if x_adv is not None:
            blocked = ((x_adv <= 0) & (grad < 0)) | ((x_adv >= 1) & (grad > 0))
            grad = torch.where(blocked, torch.zeros_like(grad), grad)
        g = flat(grad)
        a = g.abs()
        d = a.shape[1]
        if k is None:
            # the ceil(q d)-th smallest |g| is the (d - ceil(q d) + 1)-th largest
            k = d - min(max(math.ceil(self.q / 100 * d), 1), d) + 1
        if isinstance(k, torch.Tensor):
            srt = a.sort(dim=1, descending=True).values
            thresh = srt.gather(1, (k - 1).clamp(0, d - 1)[:, None])
        else:  # topk of a few is ~3x faster than a sort or kthvalue
            thresh = a.topk(min(max(int(k), 1), d), dim=1).values[:, -1:]
        keep = (a >= thresh) & (a > 0)
        return (g.sign() * keep / keep.sum(dim=1, keepdim=True).clamp_min(1)).view_as(grad)

    def project(self, delta, x):
        v, e = flat(delta), self.eps_for(x)
        if self.box_projection == "exact":
            return project_l1_box(v, flat(x), e).view_as(delta)
        return clip_to_box(project_l1_ball(v, e).view_as(delta), x)

    def noise(self, x, size=None, generator=None):
        """``size`` spread over ceil(size) random pixels with random signs (as far as l_1 noise
        can move an image: each pixel by about 1)."""
        e = self.eps_for(x) if size is None else as_batch_eps(size, x.shape[0], x)
        g = torch.empty_like(x).normal_(generator=generator)
        k = max(1, min(math.ceil(float(e.max())), x[0].numel()))
        v = flat(g)
        idx = v.abs().topk(k, dim=1).indices
        d = torch.zeros_like(v).scatter(1, idx, v.gather(1, idx).sign() / k)
        return (d * e[:, None]).view_as(x)

    def diameter(self, x):
        return float(math.prod(x.shape[1:]))

    def norm(self, delta):
        return flat(delta).abs().sum(dim=1)

    def default_step_size(self, steps: int):
        """SLIDE moves ~1% of the pixels a step; eps/10 crosses the ball in a few steps."""
        return self.eps / 10


_ = as_view  # steps go through ThreatModel.step: delta + step_size * direction(grad, x + delta)
