"""Square Attack: a score-based random search that never looks at the model's gradients.

Andriushchenko et al. (2020) attack with only the model's outputs: keep a perturbation, propose
a random change confined to a random square window, and keep it when it lowers the margin
z_y - max_{i != y} z_i. The window covers a fraction p of the image, halved on a fixed schedule
(p_init at the start, halved after 0.1%, 0.5%, 2%, 5%, 10%, 20%, 40%, 60%, 80% of the queries).
Because it only reads scores, gradient masking (zero, shattered or saturated gradients) does not
stop it: when it beats a gradient attack by a wide margin the gradient attack was misled.

Proposals per threat model (x in [0, 1], delta = x_adv - x, windows of side h, all channels):

- ``Linf``: start from vertical stripes of +-eps; a proposal sets the window to +-eps
  (one random sign per channel; flipped when it would not change the clipped image).
- ``L2``: start from a grid of bumps with random signs and total norm eps; a proposal picks a
  window W1 and a window W2, removes the perturbation in W2 and gives W1 all the budget that is not
  used outside W1 and W2: W1 becomes normalise(delta_W1 + a * bump) * a with a the free l_2 mass,
  a "bump" being a centred pattern of concentric squares (1 / (ring + 1)^2), sometimes a dipole.
- ``L1``: the same bookkeeping with l_1 mass, but the proposal in W1 pushes every pixel of the
  window towards one end of the box (random sign per channel, a bump-weighted amount), added to
  delta_W1 and projected exactly onto {l_1 <= free mass} intersected with the box. Windows are
  small (p_init 0.05) because l_1 solutions in a box are sparse: a few saturated pixels.

Every proposal stays in the threat model and in [0, 1] by construction. Batched: all examples
move at once; examples already misclassified are dropped every ``compact_every`` queries (one
device sync each time, none in between).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..projections import project_l1_box
from ..threats import ThreatModel, registry
from .base import AttackResult, attack_session, own_generator, per_example_loss

__all__ = ["square_attack", "Square", "window_side"]

_HALVINGS = (0.001, 0.005, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


def window_side(i: int, queries: int, p_init: float, h: int, w: int) -> int:
    """Side of the square window at iteration ``i`` of ``queries`` (image h x w)."""
    p = p_init / 2 ** sum(i > f * queries for f in _HALVINGS)
    return max(1, min(round(math.sqrt(p * h * w)), h - 1 if h > 1 else 1, w))


def _windows(b, s, h, w, gen, device, weight=None):
    """(B, 1, H, W) bool masks of random s x s windows, and their row/col offsets.

    Uniform positions, or with ``weight`` (B, H * W) >= 0 windows centred on a pixel drawn with
    probability proportional to its weight.
    """
    if weight is None:
        r = torch.randint(0, h - s + 1, (b,), generator=gen, device=device)
        c = torch.randint(0, w - s + 1, (b,), generator=gen, device=device)
    else:
        pix = torch.multinomial(weight, 1, generator=gen).squeeze(1)
        r = (pix // w - s // 2).clamp(0, h - s)
        c = (pix % w - s // 2).clamp(0, w - s)
    rows = torch.arange(h, device=device)[None, :] - r[:, None]
    cols = torch.arange(w, device=device)[None, :] - c[:, None]
    mask = ((rows >= 0) & (rows < s))[:, :, None] & ((cols >= 0) & (cols < s))[:, None, :]
    return mask[:, None], rows[:, None, :, None], cols[:, None, None, :]


def _bump(rows, cols, s, dipole, transpose):
    """Concentric-square bump 1 / (ring + 1)^2 of side s at the given window offsets.

    rows (B, 1, H, 1), cols (B, 1, 1, W) are pixel offsets from the window corner; dipole and
    transpose (B,) bool flip the sign of one half (along rows or columns).
    """
    center = (s - 1) / 2
    ring = torch.maximum((rows - center).abs(), (cols - center).abs()).floor()
    val = 1.0 / (ring + 1) ** 2
    half = torch.where(transpose.view(-1, 1, 1, 1), rows, cols) >= s / 2
    return torch.where(dipole.view(-1, 1, 1, 1) & half, -val, val)


def _signs(b, c, gen, device, dtype):
    return torch.randint(0, 2, (b, c, 1, 1), generator=gen, device=device).to(dtype) * 2 - 1


def _flat_norm(t, p):
    t = t.flatten(1)
    return t.abs().sum(dim=1) if p == 1 else t.norm(dim=1)


def _view(t, like):
    return t.view(-1, *([1] * (like.dim() - 1)))


def _init(threat, x, gen):
    b, c, h, w = x.shape
    eps = _view(threat.eps_for(x), x)
    if threat.lp == math.inf:
        stripes = _signs(b * w, c, gen, x.device, x.dtype).view(b, w, c).permute(0, 2, 1)
        return ((x + eps * stripes[:, :, None, :]).clamp(0, 1) - x)
    if threat.lp == 2:
        t = max(1, min(h, w) // 5)
        rows = torch.arange(h, device=x.device).view(1, 1, h, 1) % t
        cols = torch.arange(w, device=x.device).view(1, 1, 1, w) % t
        no = torch.zeros(b, dtype=torch.bool, device=x.device)
        tile = _bump(rows.expand(b, 1, h, 1), cols.expand(b, 1, 1, w), t, no, no)
        tile_sign = torch.randint(0, 2, (b, c, h // t + 1, w // t + 1), generator=gen,
                                  device=x.device).to(x.dtype) * 2 - 1
        sign = tile_sign.repeat_interleave(t, 2).repeat_interleave(t, 3)[:, :, :h, :w]
        d = tile * sign
        d = d * eps / _view(_flat_norm(d, 2).clamp_min(1e-12), x)
        return (x + d).clamp(0, 1) - x
    return torch.zeros_like(x)


def _propose(threat, x, delta, s, gen):
    """A new perturbation that differs from ``delta`` only inside random windows."""
    b, c, h, w = x.shape
    dev, dt = x.device, x.dtype
    m1, rows, cols = _windows(b, s, h, w, gen, dev)
    eps = threat.eps_for(x)
    if threat.lp == math.inf:
        sign = _signs(b, c, gen, dev, dt)
        cand = torch.where(m1, sign * _view(eps, x), delta)
        cand = (x + cand).clamp(0, 1) - x
        same = (cand == delta).flatten(1).all(dim=1)  # a wasted query: flip the signs
        alt = (x + torch.where(m1, -sign * _view(eps, x), delta)).clamp(0, 1) - x
        return torch.where(_view(same, x), alt, cand)
    p = threat.lp
    # the source window W2 sits where the perturbation has mass (uniform when there is none)
    mass = delta.abs().pow(p).sum(dim=1).flatten(1)
    mass = mass / mass.sum(dim=1, keepdim=True).clamp_min(1e-12) + 1e-3 / (h * w)
    m2, _, _ = _windows(b, s, h, w, gen, dev, weight=mass)
    outside = delta * ~(m1 | m2)
    used = _flat_norm(outside, p)
    free = (eps ** p - used ** p).clamp_min(0) ** (1 / p)
    flips = torch.randint(0, 2, (2, b), generator=gen, device=dev).bool()
    bump = _bump(rows, cols, s, flips[0], flips[1]) * m1
    sign = _signs(b, c, gen, dev, dt)
    inside = delta * m1
    if p == 2:
        u = inside + _view(free, x) * sign * bump / _view(_flat_norm(bump, 2).clamp_min(1e-12), x)
        u = u * _view(free / _flat_norm(u, 2).clamp_min(1e-12), x)
        return (x + outside + u).clamp(0, 1) - x
    room = torch.where(sign > 0, 1 - x, x) * bump.abs()
    u = (inside + sign * room * m1).flatten(1)
    u = project_l1_box(u, x.flatten(1), free).view_as(x)
    return (x + outside + u).clamp(0, 1) - x


def square_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    queries: int = 1000,
    p_init: float | None = None,
    loss: str = "margin",
    compact_every: int = 20,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Square Attack (score-based, gradient-free) on ``Linf``, ``L2`` or ``L1``; untargeted.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K) scores (logits); called without gradients.
        x: (B, C, H, W) float images in [0, 1]. y: (B,) int64 labels.
        threat: the threat model; budgets a float or a (B,) tensor.
        queries: model queries per example (the first one evaluates the starting point).
        p_init: initial fraction of the image a window covers (default 0.8 for l_inf and l_2,
            0.05 for l_1).
        loss: "margin" (the paper's choice) or "ce"; the proposal is kept when the loss rises.
        compact_every: drop misclassified examples every this many queries.
        generator: a ``torch.Generator`` on x's device (all the randomness comes from it).

    Returns:
        AttackResult with x_adv (B, C, H, W) in the threat model and [0, 1], success (B,) and
        loss (B,) at x_adv.
    """
    if not (isinstance(threat, ThreatModel) and threat.additive and threat.lp in _LP):
        raise TypeError(f"square_attack attacks Linf, L2 or L1 threats (l_p balls with p = "
                        f"inf, 2 or 1), got {threat!r}")
    if x.dim() != 4:
        raise ValueError(f"square_attack needs images (B, C, H, W), got shape {tuple(x.shape)}")
    if queries < 1 or compact_every < 1:
        raise ValueError("need queries >= 1 and compact_every >= 1")
    with attack_session(model, x, y) as x, torch.no_grad():
        p0 = _p_init(threat) if p_init is None else p_init
        h, w = x.shape[-2:]
        eps_all = threat.eps_for(x)
        delta = _init(threat, x, generator)
        logits = model(x + delta)
        best = per_example_loss(logits, y, loss, False)
        succ = logits.argmax(1) != y
        active = (~succ).nonzero().squeeze(1)
        xa, ya, da, la = x[active], y[active], delta[active], best[active]
        ta = threat.with_eps(eps_all[active])
        sa = torch.zeros_like(active, dtype=torch.bool)
        for i in range(1, queries):
            if active.numel() == 0:
                break
            cand = _propose(ta, xa, da, window_side(i, queries, p0, h, w), generator)
            logits = model(xa + cand)
            new = per_example_loss(logits, ya, loss, False)
            hit = logits.argmax(1) != ya
            keep = (new > la) | hit
            da = torch.where(_view(keep, xa), cand, da)
            la = torch.where(keep, new, la)
            sa = sa | hit
            if i % compact_every == 0 or i == queries - 1:
                delta[active], best[active], succ[active] = da, la, sa
                left = ~sa
                active, xa, ya, da, la = (t[left] for t in (active, xa, ya, da, la))
                sa = sa[left]
                ta = threat.with_eps(eps_all[active])
        if active.numel() > 0:
            delta[active], best[active], succ[active] = da, la, sa
        x_adv = (x + threat.project(delta, x)).clamp(0, 1)
    return AttackResult(x_adv, succ, best)


_LP = (math.inf, 2, 1)


def _p_init(threat) -> float:
    """The registry's first window fraction for this threat (0.8; 0.05 for l_1)."""
    try:
        return registry.info(threat.name).square_p_init
    except KeyError:
        return registry.ThreatInfo.square_p_init  # the default of an unregistered threat


@dataclass(frozen=True)
class Square:
    """Square Attack as a stateless attack object: ``Square(Linf(0.3), queries=1000)``.

    Without a ``generator``, each call seeds a local one with ``seed`` (deterministic results).
    """

    threat: ThreatModel
    queries: int = 1000
    p_init: float | None = None
    loss: str = "margin"
    seed: int = 0

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        generator = own_generator(generator, self.seed, x)
        return square_attack(model, x, y, self.threat, self.queries, self.p_init, self.loss,
                             generator=generator)
