"""The threat-model interface: what every attack, diagnostic and training strategy may ask.

A threat works on a perturbation ``delta``; for an *additive* threat (the l_p balls) delta has
the shape of the images ``x`` (B, C, H, W), x in [0, 1], and x_adv = x + delta:

- ``random_start(x, generator)`` a random delta inside the threat model with x + delta in [0, 1];
- ``direction(grad, x_adv=None, k=None)`` the steepest-ascent direction of unit threat norm for
  the gradient ``grad`` (dLoss/dx_adv): sign for l_inf, grad / ||grad||_2 for l_2, a sparse one
  for l_1 (``k`` coordinates; ``x_adv`` lets it skip coordinates the [0, 1] box blocks);
- ``step(delta, grad, step_size, x, t)`` one steepest-ascent step: delta + step_size * direction;
- ``project(delta, x)`` back into the threat model *and* the box;
- ``noise(x, size, generator)`` random noise of threat norm ``size`` (default eps), to clip into
  the box: the baseline an attack must beat;
- ``restrict(idx)`` the same threat on the examples ``idx`` only (per-example budgets follow);
- ``perturb(x, delta)`` the adversarial input, ``norm(delta)`` the (B,) norms,
  ``contains(x, x_adv)`` whether each example is a valid perturbation of x,
  ``diameter(x)`` the budget at which the threat covers the whole [0, 1] box.

Budgets ``eps`` are a float or a (B,) tensor of per-example budgets. ``scaled(f)`` gives the
same threat with every budget multiplied by ``f`` (used by ``Affine``), ``with_eps(e)`` the same
threat at budget ``e``. Class attributes tell attacks what a threat supports, so that no attack
needs to know the threat's type: ``additive``, ``searched``, ``lp``, ``sparse``, ``apgd_eta``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import torch

from ..projections import as_batch_eps

__all__ = ["ThreatModel", "check_eps", "warn_if_unbounded", "flat", "batch_view", "clip_to_box",
           "as_view"]


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
        from .registry import paper_budget

        warnings.warn(
            f"{type(threat).__name__}(eps={eps:g}) is larger than {what} ({bound:g}): the threat "
            "covers the whole [0, 1] box and every attack succeeds. Budgets are in [0, 1] pixel "
            f"units (the paper's MNIST budgets: {paper_budget(threat.name)}); divide a budget in "
            "0-255 units by 255.",
            UserWarning, stacklevel=4,
        )


_WARNED: set = set()


def flat(t: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, D)."""
    return t.reshape(t.shape[0], -1)


def batch_view(e: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (B,) tensor viewed as (B, 1, ..., 1) to broadcast against ``like`` (B, ...)."""
    return e.view(-1, *([1] * (like.dim() - 1)))


def clip_to_box(delta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Clip delta so that x + delta lies in [0, 1] (never increases |delta_i|)."""
    return (x + delta).clamp(0, 1) - x


def as_view(step_size, like: torch.Tensor):
    """A float step size as is; a (B,) tensor of step sizes viewed to broadcast against ``like``."""
    if isinstance(step_size, torch.Tensor) and step_size.dim() == 1:
        return batch_view(step_size.to(like.dtype), like)
    return step_size


class ThreatModel:
    """Base class; subclasses implement the methods listed in the module docstring.

    Subclasses are frozen dataclasses with a field ``eps`` (or an ``eps`` property and their
    own ``with_eps``/``restrict``) and set the class attributes below.
    """

    name = "threat"
    eps = 0.0
    #: delta is a tensor shaped like x and x_adv = x + delta (APGD, Square, diagnose need this)
    additive = False
    #: attacked by trying transforms (a grid search), not by gradient steps
    searched = False
    #: the p of an l_p ball (math.inf, 2, 1), for attacks built on l_p geometry (Square); None
    lp = None
    #: ``direction`` takes a sparsity ``k`` that APGD adapts (l1-APGD)
    sparse = False
    #: APGD's first step size, in units of eps
    apgd_eta = 2.0

    def eps_for(self, x: torch.Tensor) -> torch.Tensor:
        """The budget as a (B,) tensor matching x."""
        return as_batch_eps(self.eps, x.shape[0], x)

    def with_eps(self, eps) -> ThreatModel:
        """The same threat with budget ``eps`` (a float or a (B,) tensor)."""
        return replace(self, eps=eps)

    def restrict(self, idx: torch.Tensor) -> ThreatModel:
        """The threat on the examples ``idx`` only: per-example budgets are indexed, a float
        budget is kept (the threat itself is returned)."""
        eps = self.eps
        if isinstance(eps, torch.Tensor) and eps.dim() == 1:
            return self.with_eps(eps[idx.to(eps.device)])
        return self

    def perturb(self, x: torch.Tensor, delta) -> torch.Tensor:
        return x + delta

    def zero(self, x: torch.Tensor):
        """The starting point of an attack without random start."""
        return torch.zeros_like(x)

    def random_start(self, x: torch.Tensor, generator=None):
        raise NotImplementedError(f"{type(self).__name__} has no random start")

    def direction(self, grad: torch.Tensor, x_adv: torch.Tensor | None = None, k=None):
        raise NotImplementedError(f"{type(self).__name__} has no steepest-ascent direction")

    def step(self, delta, grad, step_size, x=None, t=0):
        """delta + step_size * direction(grad): one steepest-ascent step (step_size a float or
        a (B,) tensor; ``x`` the clean images, for threats whose direction sees the box)."""
        x_adv = None if x is None else x + delta
        return delta + as_view(step_size, delta) * self.direction(grad, x_adv)

    def project(self, delta, x):
        raise NotImplementedError(f"{type(self).__name__} has no projection")

    def noise(self, x: torch.Tensor, size=None, generator=None) -> torch.Tensor:
        """Random noise delta of threat norm ``size`` (float or (B,); default eps) for x;
        ``(x + delta).clamp(0, 1)`` is the noisy input."""
        raise NotImplementedError(f"{type(self).__name__} has no noise of a given size")

    def diameter(self, x: torch.Tensor) -> float:
        """The budget at which the threat covers the whole [0, 1] box of images like x."""
        raise NotImplementedError(f"{type(self).__name__} has no diameter")

    def norm(self, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def contains(self, x: torch.Tensor, x_adv: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
        """(B,) bool: x_adv in [0, 1] and ||x_adv - x|| <= eps, both within ``atol`` (relative)."""
        e = self.eps_for(x)
        in_box = flat((x_adv >= -atol) & (x_adv <= 1 + atol)).all(dim=1)
        return in_box & (self.norm(x_adv - x) <= e + atol * e.clamp_min(1))

    def scaled(self, factor: float) -> ThreatModel:
        check_eps(factor, "factor")
        return replace(self, eps=self.eps * factor)

    def default_step_size(self, steps: int):
        """A step size that lets PGD cross the ball about 2.5 times in ``steps`` steps."""
        return 2.5 * self.eps / max(steps, 1)

    def __post_init__(self):
        check_eps(self.eps)
