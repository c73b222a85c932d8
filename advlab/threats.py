"""Threat models: small objects that know how to start, step and project a perturbation.

An l_p threat works on ``delta`` (same shape as the images ``x``, (B, C, H, W), x in [0, 1]):

- ``random_start(x, generator)`` a random delta inside the threat model with x + delta in [0, 1];
- ``step(delta, grad, step_size, x, t)`` one steepest-ascent step along ``grad`` (dLoss/dx_adv);
- ``project(delta, x)`` back into the ball *and* the box;
- ``perturb(x, delta)`` the adversarial input, ``norm(delta)`` the (B,) norms;
- ``contains(x, x_adv)`` whether each example is a valid perturbation of x.

Budgets ``eps`` are a float or a (B,) tensor of per-example budgets. ``scaled(f)`` gives the
same threat with every budget multiplied by ``f`` (used by ``Affine``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .projections import as_batch_eps, project_l1_ball, project_l1_box, project_l2_ball

__all__ = ["ThreatModel", "Linf", "L2", "L1", "RotationTranslation", "Affine", "check_eps"]


def check_eps(eps, name: str = "eps") -> None:
    """Refuse negative or NaN budgets with a clear message."""
    e = torch.as_tensor(eps, dtype=torch.float64)
    if e.dim() > 1:
        raise ValueError(f"{name} must be a float or a 1-D tensor of per-example budgets")
    if torch.isnan(e).any() or torch.isinf(e).any():
        raise ValueError(f"{name} must be finite, got {eps!r}")
    if (e < 0).any():
        raise ValueError(f"{name} must be >= 0, got {eps!r}; a budget is a size, never negative")


def warn_if_unbounded(threat: ThreatModel, bound: float, what: str, once: bool = False) -> None:
    """Warn when a float budget exceeds ``bound``, the largest distance between two [0, 1]
    images (``what`` says which): the threat covers the whole box and every attack succeeds.
    Only plain numbers are checked (no device sync); exactly ``bound`` is allowed (diagnose's
    "unbounded" check uses it on purpose). ``once``: only the first time for this budget (for
    checks that run at every step)."""
    eps = threat.eps
    key = (type(threat).__name__, eps, bound)
    if isinstance(eps, (int, float)) and eps > bound and not (once and key in _WARNED):
        _WARNED.add(key)
        warnings.warn(
            f"{type(threat).__name__}(eps={eps:g}) is larger than {what} ({bound:g}): the threat "
            "covers the whole [0, 1] box and every attack succeeds. Budgets are in [0, 1] pixel "
            f"units (the paper's MNIST budgets: {_PAPER[threat.name]}); divide a budget in "
            "0-255 units by 255.",
            UserWarning, stacklevel=4,
        )


_WARNED: set = set()
_PAPER = {"linf": "Linf(0.3)", "l2": "L2(2.0)", "l1": "L1(10.0)"}


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def _view(e: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return e.view(-1, *([1] * (like.dim() - 1)))


def _box(delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Clip delta so that x + delta lies in [0, 1] (never increases |delta_i|)."""
    return (x + delta).clamp(0, 1) - x


class ThreatModel:
    """Base class; subclasses implement the methods listed in the module docstring."""

    name = "threat"
    eps = 0.0

    def eps_for(self, x: torch.Tensor) -> torch.Tensor:
        """The budget as a (B,) tensor matching x."""
        return as_batch_eps(self.eps, x.shape[0], x)

    def perturb(self, x: torch.Tensor, delta) -> torch.Tensor:
        return x + delta

    def zero(self, x: torch.Tensor):
        """The starting point of an attack without random start."""
        return torch.zeros_like(x)

    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def contains(self, x: torch.Tensor, x_adv: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
        """(B,) bool: x_adv in [0, 1] and ||x_adv - x|| <= eps, both within ``atol`` (relative)."""
        e = self.eps_for(x)
        in_box = _flat((x_adv >= -atol) & (x_adv <= 1 + atol)).all(dim=1)
        return in_box & (self.norm(x_adv - x) <= e + atol * e.clamp_min(1))

    def scaled(self, factor: float) -> ThreatModel:
        check_eps(factor, "factor")
        return replace(self, eps=self.eps * factor)

    def default_step_size(self, steps: int):
        """A step size that lets PGD cross the ball about 2.5 times in ``steps`` steps."""
        return 2.5 * self.eps / max(steps, 1)

    def __post_init__(self):
        check_eps(self.eps)


@dataclass(frozen=True)
class Linf(ThreatModel):
    """{delta : ||delta||_inf <= eps}; step: eps-free sign of the gradient."""

    eps: float = 0.3
    name = "linf"

    def __post_init__(self):
        check_eps(self.eps)
        warn_if_unbounded(self, 1.0, "the largest l_inf distance between two images")

    def random_start(self, x, generator=None):
        u = torch.empty_like(x).uniform_(-1, 1, generator=generator)
        return _box(u * _view(self.eps_for(x), x), x)

    def step(self, delta, grad, step_size, x=None, t=0):
        return delta + _as_view(step_size, delta) * grad.sign()

    def project(self, delta, x):
        e = _view(self.eps_for(x), x)
        return _box(torch.maximum(torch.minimum(delta, e), -e), x)

    def norm(self, delta):
        return _flat(delta).abs().amax(dim=1)


@dataclass(frozen=True)
class L2(ThreatModel):
    """{delta : ||delta||_2 <= eps}; step along grad / ||grad||_2 (zero gradient: no step)."""

    eps: float = 2.0
    name = "l2"

    def eps_for(self, x: torch.Tensor) -> torch.Tensor:
        d = math.prod(x.shape[1:])
        warn_if_unbounded(self, math.sqrt(d), f"the l_2 diameter of {d}-pixel images",
                          once=True)
        return super().eps_for(x)

    def random_start(self, x, generator=None):
        g = torch.empty_like(x).normal_(generator=generator)
        g = g / _view(_flat(g).norm(dim=1).clamp_min(1e-12), x)
        d = _flat(x).shape[1]
        u = torch.empty(x.shape[0], dtype=x.dtype, device=x.device).uniform_(generator=generator)
        radius = self.eps_for(x) * u.pow(1.0 / d)
        return self.project(g * _view(radius, x), x)

    def step(self, delta, grad, step_size, x=None, t=0):
        # Rescale by the largest |g_i| first: a norm floor (or squares underflowing in float32)
        # would shrink the steps of confidently classified examples to nothing.
        g = _flat(grad)
        peak = g.abs().amax(dim=1, keepdim=True)
        g = g / torch.where(peak > 0, peak, torch.ones_like(peak))
        unit = g / g.norm(dim=1, keepdim=True).clamp_min(1)  # norm >= 1 unless g == 0
        return delta + _as_view(step_size, delta) * unit.view_as(grad)

    def project(self, delta, x):
        flat = project_l2_ball(_flat(delta), self.eps_for(x))
        return _box(flat.view_as(delta), x)

    def norm(self, delta):
        return _flat(delta).norm(dim=1)


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

    def eps_for(self, x: torch.Tensor) -> torch.Tensor:
        d = math.prod(x.shape[1:])
        warn_if_unbounded(self, float(d), f"the l_1 diameter of {d}-pixel images",
                          once=True)
        return super().eps_for(x)

    def __post_init__(self):
        check_eps(self.eps)
        if not 0 <= self.q < 100:
            raise ValueError(f"q is a percentile in [0, 100), got {self.q}")
        if self.box_projection not in ("exact", "clip"):
            raise ValueError("box_projection must be 'exact' or 'clip'")

    def random_start(self, x, generator=None):
        b, d = _flat(x).shape
        e = torch.empty(b, d + 1, dtype=x.dtype, device=x.device).exponential_(generator=generator)
        simplex = e[:, :d] / e.sum(dim=1, keepdim=True)  # uniform in {u >= 0, sum(u) <= 1}
        signs = torch.empty_like(simplex).bernoulli_(0.5, generator=generator) * 2 - 1
        delta = (simplex * signs * self.eps_for(x)[:, None]).view_as(x)
        return self.project(delta, x)

    def step(self, delta, grad, step_size, x, t=0):
        x_adv = x + delta
        blocked = ((x_adv <= 0) & (grad < 0)) | ((x_adv >= 1) & (grad > 0))
        g = _flat(torch.where(blocked, torch.zeros_like(grad), grad))
        a = g.abs()
        k = min(max(math.ceil(self.q / 100 * a.shape[1]), 1), a.shape[1])
        # the k-th smallest |g| is the (d - k + 1)-th largest: topk of a few is ~3x kthvalue
        thresh = a.topk(a.shape[1] - k + 1, dim=1).values[:, -1:]
        keep = (a >= thresh) & (a > 0)
        weight = keep / keep.sum(dim=1, keepdim=True).clamp_min(1)
        return delta + _as_view(step_size, delta) * (g.sign() * weight).view_as(delta)

    def project(self, delta, x):
        flat, e = _flat(delta), self.eps_for(x)
        if self.box_projection == "exact":
            return project_l1_box(flat, _flat(x), e).view_as(delta)
        return _box(project_l1_ball(flat, e).view_as(delta), x)

    def norm(self, delta):
        return _flat(delta).abs().sum(dim=1)

    def default_step_size(self, steps: int):
        """SLIDE moves ~1% of the pixels a step; eps/10 crosses the ball in a few steps."""
        return self.eps / 10


def _as_view(step_size, like: torch.Tensor):
    if isinstance(step_size, torch.Tensor) and step_size.dim() == 1:
        return _view(step_size.to(like.dtype), like)
    return step_size


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


def _memory_format(x: torch.Tensor):
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1:
        return torch.channels_last
    return torch.contiguous_format


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

    @property
    def spatial(self) -> bool:
        return isinstance(self.a, RotationTranslation)

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
