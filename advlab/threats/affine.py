"""The paper's affine combination of two threats: part of one budget plus part of another."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from .base import ThreatModel
from .spatial import RotationTranslation

__all__ = ["Affine"]


@dataclass(frozen=True)
class Affine(ThreatModel):
    """The paper's affine combination: ``weight`` of threat ``a`` plus ``1 - weight`` of ``b``.

    Each budget is scaled by its weight, e.g. ``Affine(RotationTranslation(), Linf(0.3), 0.5)``
    is half the rotation-translation budget with half the l_inf noise on top. A perturbation is a
    pair (part_a, part_b); x_adv = x + delta_a + delta_b for two l_p threats (PGD steps alternate
    between the parts), and x_adv = T(x) + delta for a rotation-translation T with l_p noise.
    """

    a: ThreatModel = None
    b: ThreatModel = None
    weight: float = 0.5
    name = "affine"

    def __post_init__(self):
        if not isinstance(self.a, ThreatModel) or not isinstance(self.b, ThreatModel):
            raise TypeError("Affine(a, b, weight) needs two threat models")
        if not 0 <= self.weight <= 1 or math.isnan(self.weight):
            raise ValueError(f"weight must be in [0, 1], got {self.weight}")
        if isinstance(self.b, RotationTranslation) and not isinstance(self.a, RotationTranslation):
            raise ValueError("put the rotation-translation first: Affine(RT(...), lp, w)")
        if isinstance(self.b, (Affine, RotationTranslation)) or isinstance(self.a, Affine):
            raise ValueError("Affine combines one spatial or l_p threat with one l_p threat")

    @property
    def parts(self) -> tuple[ThreatModel, ThreatModel]:
        """The two threats with their budgets scaled by weight and 1 - weight."""
        return self.a.scaled(self.weight), self.b.scaled(1 - self.weight)

    def restrict(self, idx):
        return replace(self, a=self.a.restrict(idx), b=self.b.restrict(idx))

    @property
    def spatial(self) -> bool:
        return self.a.searched

    @property
    def eps(self):
        return self.weight * self.a.eps + (1 - self.weight) * self.b.eps

    def scaled(self, factor):
        return replace(self, a=self.a.scaled(factor), b=self.b.scaled(factor))

    def _base(self, x, part_a):
        """The image the second part perturbs, and what it must stay in the box around."""
        pa, _ = self.parts
        return pa.perturb(x, part_a)

    def random_start(self, x, generator=None):
        pa, pb = self.parts
        da = pa.random_start(x, generator)
        return da, pb.random_start(self._base(x, da), generator)

    def zero(self, x):
        pa, pb = self.parts
        return pa.zero(x), pb.zero(x)

    def perturb(self, x, delta):
        da, db = delta
        return self._base(x, da) + db

    def step(self, delta, grad, step_size, x, t=0):
        """Alternate: even steps move part a, odd steps part b (only b for a spatial part a)."""
        (da, db), (sa, sb) = delta, _pair(step_size)
        pa, pb = self.parts
        if self.spatial or t % 2 == 1:
            return da, pb.step(db, grad, sb, self._base(x, da), t)
        return pa.step(da, grad, sa, x + db, t), db  # x + db: the box as the full input sees it

    def project(self, delta, x):
        da, db = delta
        pa, pb = self.parts
        da = pa.project(da, x)
        return da, pb.project(db, self._base(x, da))

    def default_step_size(self, steps):
        pa, pb = self.parts
        k = steps if self.spatial else max(steps // 2, 1)
        return pa.default_step_size(k), pb.default_step_size(k)

    def contains_parts(self, x, delta, atol=1e-6) -> torch.Tensor:
        """(B,) bool: each part within its scaled budget and the result in [0, 1]."""
        da, db = delta
        pa, pb = self.parts
        base = self._base(x, da)
        ok_a = pa.contains_params(da, atol) if self.spatial else pa.contains(x, x + da, atol)
        return ok_a & pb.contains(base, base + db, atol)

    def norm(self, delta):
        raise TypeError("an affine perturbation has two parts; use contains_parts")

    def contains(self, x, x_adv, atol=1e-6):
        raise TypeError("x_adv alone does not tell the two parts; use contains_parts")


def _pair(step_size):
    if isinstance(step_size, tuple):
        return step_size
    return step_size, step_size
