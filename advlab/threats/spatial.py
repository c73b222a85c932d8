"""Rotations and translations (Engstrom et al. 2019): a perturbation is a transform, not a delta."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .base import ThreatModel, check_eps

__all__ = ["RotationTranslation"]


@dataclass(frozen=True)
class RotationTranslation(ThreatModel):
    """Rotations up to ``max_rot`` degrees and translations up to ``max_trans`` pixels.

    A perturbation is a (B, 3) tensor of (angle in degrees, dx, dy in pixels), applied with
    ``affine_grid``/``grid_sample`` (bilinear, zero padding, so images stay in [0, 1]). The paper's
    attack tries every transform of a grid: ``n_trans`` x ``n_trans`` translations x ``n_rot``
    angles (5 x 5 x 31 = 775 by default: +-3 px in 1.5 px steps, +-30 degrees in 2 degree steps).
    """

    max_rot: float = 30.0
    max_trans: float = 3.0
    n_rot: int = 31
    n_trans: int = 5
    name = "rt"
    searched = True  # the paper tries every transform of a grid

    def __post_init__(self):
        check_eps(self.max_rot, "max_rot")
        check_eps(self.max_trans, "max_trans")
        if self.n_rot < 1 or self.n_trans < 1:
            raise ValueError("n_rot and n_trans must be >= 1")

    @property
    def eps(self):  # the grid scales with the budgets, not with one eps
        return max(self.max_rot, self.max_trans)

    def scaled(self, factor: float) -> RotationTranslation:
        check_eps(factor, "factor")
        return replace(self, max_rot=self.max_rot * factor, max_trans=self.max_trans * factor)

    def grid(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """(n_trans**2 * n_rot, 3) transforms (angle, dx, dy); includes the identity when odd.

        An axis whose budget is 0 has the single value 0 (not n copies of the same transform).
        """
        rot = torch.linspace(-self.max_rot, self.max_rot, self.n_rot, dtype=dtype, device=device)
        tr = torch.linspace(
            -self.max_trans, self.max_trans, self.n_trans, dtype=dtype, device=device
        )
        if self.n_rot == 1 or self.max_rot == 0:
            rot = rot.new_zeros(1)
        if self.n_trans == 1 or self.max_trans == 0:
            tr = tr.new_zeros(1)
        a, dx, dy = torch.meshgrid(rot, tr, tr, indexing="ij")
        return torch.stack([a.flatten(), dx.flatten(), dy.flatten()], dim=1)

    def random_start(self, x, generator=None):
        u = torch.empty(x.shape[0], 3, dtype=x.dtype, device=x.device).uniform_(
            -1, 1, generator=generator
        )
        return u * torch.tensor([self.max_rot, self.max_trans, self.max_trans], dtype=x.dtype,
                                device=x.device)

    def zero(self, x):
        return x.new_zeros(x.shape[0], 3)

    def perturb(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), params (B, 3) -> transformed images (B, C, H, W) in [0, 1]."""
        h, w = x.shape[-2:]
        rad = params[:, 0] * (math.pi / 180)
        cos, sin = torch.cos(rad), torch.sin(rad)
        tx, ty = params[:, 1] * (2.0 / w), params[:, 2] * (2.0 / h)
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # grid_sample's identity is off by a few 1e-6 (rounded sample positions): make it exact
        identity = (params == 0).all(dim=1).view(-1, *([1] * (x.dim() - 1)))
        out = torch.where(identity, x, out)
        return out.contiguous(memory_format=_memory_format(x))

    def project(self, params: torch.Tensor, x=None) -> torch.Tensor:
        """Clamp each (angle, dx, dy) into the budgets."""
        bound = params.new_tensor([self.max_rot, self.max_trans, self.max_trans])
        return torch.maximum(torch.minimum(params, bound), -bound)

    def contains_params(self, params: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
        """(B,) bool: every transform within the budgets."""
        ok_rot = params[:, 0].abs() <= self.max_rot + atol
        return ok_rot & (params[:, 1:].abs() <= self.max_trans + atol).all(dim=1)

    def norm(self, params):
        raise TypeError("a rotation-translation has budgets per parameter; use contains_params")

    def contains(self, x, x_adv, atol=1e-6):
        raise TypeError("x_adv alone does not tell the transform; use contains_params(params)")

    def with_eps(self, eps):
        raise TypeError("a rotation-translation has two budgets: use replace(threat, max_rot=..., "
                        "max_trans=...) or scaled(factor)")

    def restrict(self, idx):
        return self  # the budgets are the same for every example


def _memory_format(x: torch.Tensor):
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
        return torch.channels_last
    return torch.contiguous_format
