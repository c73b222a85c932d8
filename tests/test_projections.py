"""Exact projections against independent float64 references (bisection), with edge cases.

The references below share no code with ``advlab.projections``: they find the soft threshold by
bisection on a monotone function instead of sorting, in numpy float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advlab.projections import (
    as_batch_eps,
    l1_threshold,
    project_l1_ball,
    project_l1_box,
    project_l2_ball,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------------- references


def _bisect(fn, lo: float, hi: float, iters: int = 200) -> float:
    """The smallest t in [lo, hi] with fn(t) <= 0, for fn non-increasing."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if fn(mid) > 0:
            lo = mid
        else:
            hi = mid
    return hi


def ref_l1_ball(v: np.ndarray, eps: float) -> np.ndarray:
    """argmin ||w - v||_2 s.t. ||w||_1 <= eps, via bisection on the soft threshold."""
    a = np.abs(v)
    if a.sum() <= eps:
        return v.copy()
    theta = _bisect(lambda t: np.maximum(a - t, 0).sum() - eps, 0.0, float(a.max()))
    return np.sign(v) * np.maximum(a - theta, 0)


def ref_l1_box(v: np.ndarray, x: np.ndarray, eps: float) -> np.ndarray:
    """argmin ||d - v||_2 s.t. ||d||_1 <= eps, 0 <= x + d <= 1, via bisection on lambda.

    KKT: d = clip(soft(v, lam), -x, 1 - x) with the smallest lam >= 0 meeting the budget.
    """

    def d_of(lam):
        soft = np.sign(v) * np.maximum(np.abs(v) - lam, 0)
        return np.clip(soft, -x, 1 - x)

    if np.abs(d_of(0.0)).sum() <= eps:
        return d_of(0.0)
    lam = _bisect(lambda t: np.abs(d_of(t)).sum() - eps, 0.0, float(np.abs(v).max()))
    return d_of(lam)


def offbyone_l1_ball(v: torch.Tensor, eps: float) -> torch.Tensor:
    """The flawed formula found in public code: theta from the *first index that fails*.

    Written out here only to show that it leaves the ball (regression guard for our formula).
    """
    a = v.abs()
    u, _ = torch.sort(a, dim=1, descending=True)
    css = torch.cumsum(u, dim=1)
    j = torch.arange(1, a.shape[1] + 1, dtype=a.dtype)
    fails = ~(u * j > css - eps)
    first_fail = fails.float().argmax(dim=1)  # 0 when nothing fails: the blow-up
    theta = (css.gather(1, first_fail[:, None]).squeeze(1) - eps) / (first_fail + 1)
    return torch.sign(v) * (a - theta[:, None]).clamp_min(0)


def _f64(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# ------------------------------------------------------------------------------------ strategies


@st.composite
def batches(draw, max_b=4, max_d=40, tie_values=True):
    """(v (B, D) float64, eps list) with ties, zeros, rows inside and per-example eps incl. 0."""
    b = draw(st.integers(1, max_b))
    d = draw(st.integers(1, max_d))
    if tie_values and draw(st.booleans()):
        elems = st.sampled_from([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0])  # many ties
    else:
        elems = st.floats(-3, 3, allow_nan=False, width=64)
    v = np.array(draw(st.lists(elems, min_size=b * d, max_size=b * d))).reshape(b, d)
    if draw(st.booleans()):
        v[draw(st.integers(0, b - 1))] = 0.0  # a zero row
    l1 = np.abs(v).sum(axis=1)
    eps = [
        draw(
            st.one_of(
                st.just(0.0),
                st.floats(0, 5, allow_nan=False),
                st.just(float(l1[i])),  # exactly on the sphere
                st.floats(float(l1[i]), float(l1[i]) + 5),  # already inside
            )
        )
        for i in range(b)
    ]
    return v, eps


# ---------------------------------------------------------------------------------- l_1 ball


@SETTINGS
@given(batches())
def test_l1_ball_matches_bisection_reference(data):
    v, eps = data
    out = project_l1_ball(torch.tensor(v), _f64(eps)).numpy()
    for i in range(v.shape[0]):
        ref = ref_l1_ball(v[i], eps[i])
        np.testing.assert_allclose(out[i], ref, atol=1e-9, rtol=0)
        assert np.abs(out[i]).sum() <= eps[i] * (1 + 1e-12) + 1e-12


@SETTINGS
@given(batches(max_d=60))
def test_l1_ball_float32_stays_inside(data):
    v, eps = data
    out = project_l1_ball(torch.tensor(v, dtype=torch.float32), _f64(eps))
    e = torch.tensor(eps, dtype=torch.float32)
    assert (out.abs().sum(1) <= e + 1e-6 * e.clamp_min(1)).all()
    for i in range(v.shape[0]):
        np.testing.assert_allclose(out[i].double().numpy(), ref_l1_ball(v[i], eps[i]), atol=1e-5)


def test_l1_ball_edge_cases():
    # ties: four equal coordinates, budget 2 -> each shrinks by the same amount
    v = torch.tensor([[1.0, -1.0, 1.0, -1.0]], dtype=torch.float64)
    np.testing.assert_allclose(project_l1_ball(v, 2.0).numpy(), [[0.5, -0.5, 0.5, -0.5]])
    # every coordinate survives the threshold (the case that breaks the off-by-one formula)
    v = torch.tensor([[3.0, 2.9, 2.8, 2.7]], dtype=torch.float64)
    out = project_l1_ball(v, 10.0)
    assert (out.abs() > 0).all()
    np.testing.assert_allclose(out.numpy()[0], ref_l1_ball(v.numpy()[0], 10.0), atol=1e-12)
    assert out.abs().sum().item() == pytest.approx(10.0)
    # points already inside come back unchanged, bit for bit, including zero vectors
    v = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0]])
    assert torch.equal(project_l1_ball(v, 1.0), v)
    # eps = 0 sends everything to 0
    assert torch.equal(project_l1_ball(torch.randn(3, 7), 0.0), torch.zeros(3, 7))
    # a single coordinate
    np.testing.assert_allclose(project_l1_ball(torch.tensor([[-5.0]]), 2.0).numpy(), [[-2.0]])


def test_l1_ball_per_example_eps_and_eps10_float32():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(6, 784, generator=g) * 0.5
    eps = torch.tensor([0.0, 10.0, 10.0, 1e-3, 50.0, 1e4])
    out = project_l1_ball(v, eps)
    norms = out.abs().sum(1)
    assert (norms <= eps * (1 + 1e-6) + 1e-7).all()
    assert torch.equal(out[0], torch.zeros(784))
    assert torch.equal(out[5], v[5])  # inside: unchanged
    for i in range(1, 5):
        ref = ref_l1_ball(v[i].double().numpy(), float(eps[i]))
        np.testing.assert_allclose(out[i].double().numpy(), ref, atol=2e-5)


def test_l1_threshold_is_the_root():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(5, 30, generator=g, dtype=torch.float64)
    eps = torch.tensor([0.5, 1.0, 3.0, 7.0, 14.0], dtype=torch.float64)
    theta = l1_threshold(a, eps)
    np.testing.assert_allclose((a - theta[:, None]).clamp_min(0).sum(1).numpy(), eps.numpy())


def test_offbyone_formula_leaves_the_ball():
    """The regression: the published first-failing-index formula is not a projection."""
    # case 1: some coordinates fail; the flawed theta is too small -> norm above eps
    v = torch.tensor([[1.0, 0.9, 0.1, 0.05]], dtype=torch.float64)
    bad = offbyone_l1_ball(v, 1.0)
    assert bad.abs().sum().item() > 1.0 + 1e-3
    # case 2: every coordinate survives -> the flawed index is 0 and theta < 0: blows up
    v = torch.tensor([[3.0, 2.9, 2.8, 2.7]], dtype=torch.float64)
    bad = offbyone_l1_ball(v, 10.0)
    assert bad.abs().sum().item() > 10.0 + 1.0
    # ours gets both right
    for v, eps in [([[1.0, 0.9, 0.1, 0.05]], 1.0), ([[3.0, 2.9, 2.8, 2.7]], 10.0)]:
        out = project_l1_ball(torch.tensor(v, dtype=torch.float64), eps)
        assert out.abs().sum().item() == pytest.approx(eps)
        np.testing.assert_allclose(out.numpy()[0], ref_l1_ball(np.array(v[0]), eps), atol=1e-12)


# ---------------------------------------------------------------------------------- l_2 ball


def _l2(r: np.ndarray) -> float:
    """The l_2 norm without underflow for tiny entries (np.linalg.norm squares them to 0)."""
    peak = np.abs(r).max()
    return 0.0 if peak == 0 else float(peak * np.linalg.norm(r / peak))


@SETTINGS
@given(batches(tie_values=False))
def test_l2_ball(data):
    v, eps = data
    vt = torch.tensor(v)
    out = project_l2_ball(vt, _f64(eps))
    norms = [_l2(r) for r in v]
    for i in range(v.shape[0]):
        ref = v[i] if norms[i] <= eps[i] else v[i] * eps[i] / norms[i]
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-12)
    inside = torch.tensor([n <= e for n, e in zip(norms, eps, strict=True)])
    assert torch.equal(out[inside], vt[inside])


# ----------------------------------------------------------------------------- l_1 ball ∩ box


@st.composite
def box_problems(draw, max_b=3, max_d=30):
    v, eps = draw(batches(max_b=max_b, max_d=max_d))
    edge = st.sampled_from([0.0, 1.0, 0.5])
    inner = st.floats(0, 1, allow_nan=False, width=64)
    x = np.array(draw(st.lists(st.one_of(edge, inner), min_size=v.size, max_size=v.size)))
    return v, x.reshape(v.shape), eps


@SETTINGS
@given(box_problems())
def test_l1_box_matches_bisection_reference(data):
    v, x, eps = data
    out = project_l1_box(torch.tensor(v), torch.tensor(x), _f64(eps)).numpy()
    for i in range(v.shape[0]):
        ref = ref_l1_box(v[i], x[i], eps[i])
        np.testing.assert_allclose(out[i], ref, atol=1e-8, rtol=0)
        assert np.abs(out[i]).sum() <= eps[i] * (1 + 1e-12) + 1e-12
        assert (x[i] + out[i] >= -1e-12).all() and (x[i] + out[i] <= 1 + 1e-12).all()


@SETTINGS
@given(box_problems())
def test_l1_box_beats_project_then_clip(data):
    v, x, eps = data
    vt, xt = torch.tensor(v), torch.tensor(x)
    exact = project_l1_box(vt, xt, _f64(eps))
    clipped = (xt + project_l1_ball(vt, _f64(eps))).clamp(0, 1) - xt
    assert ((exact - vt).norm(dim=1) <= (clipped - vt).norm(dim=1) + 1e-9).all()


def test_l1_box_strictly_better_than_clip_and_feasible_inputs_unchanged():
    # coordinate 0 has no room upwards: clip wastes budget on it, the exact projection does not
    v = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    exact = project_l1_box(v, x, 1.0)
    np.testing.assert_allclose(exact.numpy(), [[0.0, 1.0]], atol=1e-12)
    clipped = (x + project_l1_ball(v, 1.0)).clamp(0, 1) - x
    np.testing.assert_allclose(clipped.numpy(), [[0.0, 0.5]], atol=1e-12)
    assert (exact - v).norm() < (clipped - v).norm() - 0.1
    # a point inside both the ball and the box is returned as it is
    v = torch.tensor([[0.1, -0.2, 0.0]])
    x = torch.tensor([[0.5, 0.5, 1.0]])
    assert torch.equal(project_l1_box(v, x, 1.0), v)
    # eps = 0 per example
    v = torch.randn(3, 10, dtype=torch.float64)
    x = torch.rand(3, 10, dtype=torch.float64)
    out = project_l1_box(v, x, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    assert torch.equal(out[0], torch.zeros(10, dtype=torch.float64))
    assert torch.equal(out[2], torch.zeros(10, dtype=torch.float64))


def test_l1_box_eps10_float32_mnist_sized():
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(8, 784, generator=g) > 0.8).float()  # MNIST-like: pixels at 0 and 1
    x[:, :100] = torch.rand(8, 100, generator=g)
    v = torch.randn(8, 784, generator=g) * 0.3
    out = project_l1_box(v, x, 10.0)
    assert (out.abs().sum(1) <= 10.0 * (1 + 1e-6)).all()
    assert ((x + out) >= -1e-6).all() and ((x + out) <= 1 + 1e-6).all()
    for i in range(8):
        ref = ref_l1_box(v[i].double().numpy(), x[i].double().numpy(), 10.0)
        np.testing.assert_allclose(out[i].double().numpy(), ref, atol=1e-4)


def _scipy_l1_box(optimize, v, x, eps):
    """Solve the projection as a QP in (p, n) >= 0 with d = p - n, by SLSQP."""
    d = v.size

    def obj(z):
        return 0.5 * np.sum((z[:d] - z[d:] - v) ** 2)

    cons = [
        {"type": "ineq", "fun": lambda z: eps - z.sum()},
        {"type": "ineq", "fun": lambda z: 1 - x - (z[:d] - z[d:])},
        {"type": "ineq", "fun": lambda z: x + (z[:d] - z[d:])},
    ]
    res = optimize.minimize(obj, np.zeros(2 * d), bounds=[(0, None)] * (2 * d),
                            constraints=cons, method="SLSQP", options={"ftol": 1e-12})
    return res.x[:d] - res.x[d:]


def test_l1_box_against_scipy_solver():
    """A second, solver-based reference on small problems (when scipy is installed)."""
    optimize = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(0)
    for _ in range(5):
        v, x, eps = rng.normal(size=6), rng.uniform(size=6), 0.7
        x[:2] = [0.0, 1.0]
        ours = project_l1_box(torch.tensor(v[None]), torch.tensor(x[None]), eps).numpy()[0]
        np.testing.assert_allclose(ours, _scipy_l1_box(optimize, v, x, eps), atol=1e-5)


def test_as_batch_eps():
    like = torch.zeros(3, 2, dtype=torch.float64)
    assert torch.equal(as_batch_eps(0.5, 3, like), torch.full((3,), 0.5, dtype=torch.float64))
    assert as_batch_eps(torch.tensor([1.0, 2.0, 3.0]), 3, like).dtype == torch.float64
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        as_batch_eps(torch.tensor([1.0, 2.0]), 3, like)
