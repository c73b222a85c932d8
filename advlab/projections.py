"""Exact Euclidean projections, batched over the rows of a (B, D) tensor, on the input's device.

Budgets ``eps`` are a float or a (B,) tensor (one budget per row), all >= 0.
"""

from __future__ import annotations

import torch

__all__ = ["as_batch_eps", "project_l1_ball", "project_l1_box", "project_l2_ball", "l1_threshold"]


def as_batch_eps(eps, batch: int, like: torch.Tensor) -> torch.Tensor:
    """``eps`` as a (B,) tensor with ``like``'s dtype and device."""
    e = torch.as_tensor(eps, dtype=like.dtype, device=like.device)
    if e.dim() == 0:
        return e.expand(batch)
    if e.shape != (batch,):
        raise ValueError(f"a per-example eps must have shape ({batch},), got {tuple(e.shape)}")
    return e


def l1_threshold(a: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The soft threshold theta >= 0 with sum(max(a - theta, 0)) = eps, per row (Duchi et al. 2008).

    ``a`` (B, D) holds absolute values, ``eps`` (B,) > 0 with sum(a) > eps. Sort descending,
    take the *largest* index rho (1-based) with u_rho > (sum_{j<=rho} u_j - eps) / rho, and
    theta = (sum_{j<=rho} u_j - eps) / rho. The condition holds on a prefix of indices, so the
    last index that passes is also the number of indices that pass.
    """
    u, _ = torch.sort(a, dim=1, descending=True)
    css = torch.cumsum(u, dim=1)
    j = torch.arange(1, a.shape[1] + 1, device=a.device, dtype=a.dtype)
    passes = u * j > css - eps[:, None]
    rho = (passes * j).amax(dim=1).clamp_min(1)  # last index that passes (>= 1 when eps > 0)
    css_rho = css.gather(1, (rho.long() - 1)[:, None]).squeeze(1)
    return ((css_rho - eps) / rho).clamp_min(0)


def _shrink_to(v: torch.Tensor, norm: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Rescale rows whose norm exceeds eps by a rounding error back inside (towards 0)."""
    scale = torch.where(norm > eps, eps / norm.clamp_min(1e-30), torch.ones_like(norm))
    return v * scale[:, None]


def project_l1_ball(v: torch.Tensor, eps) -> torch.Tensor:
    """Projection of each row of ``v`` (B, D) onto {w : ||w||_1 <= eps}; rows inside stay."""
    e = as_batch_eps(eps, v.shape[0], v)
    a = v.abs()
    norm = a.sum(dim=1)
    outside = norm > e
    theta = l1_threshold(a, torch.where(outside, e, norm.clamp_min(1.0)))
    w = torch.sign(v) * (a - theta[:, None]).clamp_min(0)
    w = torch.where((e == 0)[:, None], torch.zeros_like(v), w)
    w = _shrink_to(w, w.abs().sum(dim=1), e)
    return torch.where(outside[:, None], w, v)


def project_l2_ball(v: torch.Tensor, eps) -> torch.Tensor:
    """Projection of each row of ``v`` (B, D) onto {w : ||w||_2 <= eps}."""
    e = as_batch_eps(eps, v.shape[0], v)
    norm = v.norm(dim=1)
    scale = torch.where(norm > e, e / norm.clamp_min(1e-12), torch.ones_like(norm))
    return v * scale[:, None]


def project_l1_box(v: torch.Tensor, x: torch.Tensor, eps) -> torch.Tensor:
    """Exact projection of each row of ``v`` onto {d : ||d||_1 <= eps, 0 <= x + d <= 1}.

    ``v`` and ``x`` are (B, D), ``x`` in [0, 1]. The solution is d_i = clip(soft(v_i, lam), -x_i,
    1 - x_i) with the smallest lam >= 0 that meets the budget. g(lam) = sum_i clamp(|v_i| - lam, 0,
    c_i), with c_i the room in v_i's direction, is piecewise linear: we sort its breakpoints, walk
    the slopes with cumulative sums, and interpolate on the piece where g crosses eps.
    """
    e = as_batch_eps(eps, v.shape[0], v)
    a = v.abs()
    room = torch.where(v >= 0, 1 - x, x).clamp_min(0)
    g0 = torch.minimum(a, room).sum(dim=1)
    bps = torch.cat([(a - room).clamp_min(0), a], dim=1)
    slopes = torch.cat([-torch.ones_like(a), torch.ones_like(a)], dim=1)
    bps, order = torch.sort(bps, dim=1)
    slope_after = torch.cumsum(slopes.gather(1, order), dim=1)
    rise = slope_after[:, :-1] * torch.diff(bps, dim=1)
    g_at = g0[:, None] + torch.cat([torch.zeros_like(g0)[:, None], torch.cumsum(rise, 1)], 1)
    k = ((g_at > e[:, None]).sum(dim=1) - 1).clamp_min(0)[:, None]
    g_k, bp_k, s_k = g_at.gather(1, k), bps.gather(1, k), slope_after.gather(1, k)
    lam = (bp_k + (g_k - e[:, None]) / (-s_k).clamp_min(1)).squeeze(1)
    lam = torch.where(g0 > e, lam.clamp_min(0), torch.zeros_like(lam))
    d = torch.sign(v) * torch.minimum((a - lam[:, None]).clamp_min(0), room)
    return _shrink_to(d, d.abs().sum(dim=1), e)
