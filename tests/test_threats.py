"""Threat models: every output inside its threat model and the box, and the step rules.

Membership is checked here with our own float64 norms, not with ``ThreatModel.contains``
(which gets its own test).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advlab.threats import L1, L2, Affine, Linf, RotationTranslation

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6


def _norm(delta: torch.Tensor, p) -> torch.Tensor:
    flat = delta.reshape(delta.shape[0], -1).double()
    return flat.norm(p=p, dim=1)


def _inside_lp(x, x_adv, p, eps) -> None:
    """Assert x_adv in [0, 1] and ||x_adv - x||_p <= eps, both within 1e-6 (relative for eps)."""
    e = torch.as_tensor(eps, dtype=torch.float64).expand(x.shape[0])
    assert x_adv.min().item() >= -TOL and x_adv.max().item() <= 1 + TOL
    n = _norm(x_adv - x, p)
    assert (n <= e + TOL * e.clamp_min(1)).all(), (n, e)


def _params_inside(rt: RotationTranslation, params: torch.Tensor) -> None:
    assert (params[:, 0].abs() <= rt.max_rot + TOL).all()
    assert (params[:, 1:].abs() <= rt.max_trans + TOL).all()


# ------------------------------------------------------------------------------------ strategies


@st.composite
def images(draw, max_b=3):
    """x (B, C, H, W) float32 with many pixels exactly at 0 or 1 (the box edges)."""
    b, c = draw(st.integers(1, max_b)), draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, c, h, w, generator=g)
    kind = draw(st.sampled_from(["edges", "zeros", "ones", "mixed"]))
    if kind == "edges":
        x = (x > 0.5).float()
    elif kind == "zeros":
        x = torch.zeros_like(x)
    elif kind == "ones":
        x = torch.ones_like(x)
    else:
        x = torch.where(x < 0.3, torch.zeros_like(x), torch.where(x > 0.7, torch.ones_like(x), x))
    return x, g


@st.composite
def budgets(draw, b: int, hi: float):
    """A float or a (B,) tensor of per-example budgets, with 0 often."""
    value = st.one_of(st.just(0.0), st.floats(0, hi, allow_nan=False), st.just(hi))
    if draw(st.booleans()):
        return draw(value)
    return torch.tensor([draw(value) for _ in range(b)])


LP = [
    (Linf, math.inf, 1.2),
    (L2, 2, 5.0),
    (lambda eps: L1(eps, box_projection="exact"), 1, 12.0),
    (lambda eps: L1(eps, box_projection="clip"), 1, 12.0),
    (lambda eps: L1(eps, q=50.0), 1, 12.0),
]


@SETTINGS
@given(data=st.data(), which=st.integers(0, len(LP) - 1))
def test_lp_outputs_inside_threat_and_box(data, which):
    make, p, hi = LP[which]
    x, g = data.draw(images())
    eps = data.draw(budgets(x.shape[0], hi))
    threat = make(eps)
    # random start
    start = threat.random_start(x, g)
    _inside_lp(x, x + start, p, eps)
    # projection of an arbitrary (large) perturbation
    scale = data.draw(st.sampled_from([1e-3, 0.5, 3.0, 50.0]))
    delta = torch.randn(x.shape, generator=g) * scale
    proj = threat.project(delta, x)
    _inside_lp(x, x + proj, p, eps)
    assert bool(threat.contains(x, x + proj).all())
    # a step from the start followed by a projection
    grad = torch.randn(x.shape, generator=g)
    stepped = threat.project(threat.step(start, grad, 0.7, x), x)
    _inside_lp(x, x + stepped, p, eps)


@SETTINGS
@given(data=st.data())
def test_lp_projection_is_idempotent_and_keeps_inside_points(data):
    x, g = data.draw(images())
    for threat in (Linf(0.2), L2(1.0), L1(3.0)):
        d = threat.random_start(x, g)
        once = threat.project(d, x)
        torch.testing.assert_close(once, d, atol=1e-6, rtol=0)
        torch.testing.assert_close(threat.project(once, x), once, atol=1e-6, rtol=0)


@SETTINGS
@given(data=st.data())
def test_rotation_translation_outputs(data):
    x, g = data.draw(images())
    rot = data.draw(st.floats(0, 90))
    trans = data.draw(st.floats(0, 5))
    rt = RotationTranslation(rot, trans)
    params = rt.random_start(x, g)
    _params_inside(rt, params)
    out = rt.perturb(x, params)
    assert out.shape == x.shape
    assert out.min().item() >= -TOL and out.max().item() <= 1 + TOL
    assert bool(rt.contains_params(params).all())


AFFINE = [
    lambda: Affine(Linf(0.3), L2(2.0), 0.5),
    lambda: Affine(L1(10.0), Linf(0.3), 0.3),
    lambda: Affine(L2(2.0), L1(10.0), 0.8),
    lambda: Affine(RotationTranslation(), Linf(0.3), 0.5),
    lambda: Affine(RotationTranslation(), L1(10.0), 0.25),
    lambda: Affine(Linf(0.3), L2(2.0), 0.0),
    lambda: Affine(RotationTranslation(), L2(2.0), 1.0),
]


@SETTINGS
@given(data=st.data(), which=st.integers(0, len(AFFINE) - 1))
def test_affine_outputs_inside_parts(data, which):
    threat = AFFINE[which]()
    x, g = data.draw(images())
    start = threat.random_start(x, g)
    assert bool(threat.contains_parts(x, start).all())
    x_adv = threat.perturb(x, start)
    assert x_adv.min().item() >= -TOL and x_adv.max().item() <= 1 + TOL
    # project an arbitrary pair, including spatial parameters far outside the budgets
    if threat.spatial:
        da = torch.randn(x.shape[0], 3, generator=g) * 100
    else:
        da = torch.randn(x.shape, generator=g) * 3
    db = torch.randn(x.shape, generator=g) * 3
    proj = threat.project((da, db), x)
    assert bool(threat.contains_parts(x, proj).all())
    x_adv = threat.perturb(x, proj)
    assert x_adv.min().item() >= -TOL and x_adv.max().item() <= 1 + TOL
    # steps at t = 0 and t = 1 followed by projections stay inside
    d = start
    for t in range(2):
        d = threat.project(threat.step(d, torch.randn(x.shape, generator=g), (0.1, 0.5), x, t), x)
        assert bool(threat.contains_parts(x, d).all())


# ----------------------------------------------------------------------------------- l_inf, l_2


def test_linf_step_is_the_gradient_sign():
    delta = torch.zeros(2, 1, 3, 3)
    grad = torch.randn(2, 1, 3, 3)
    grad[0, 0, 0, 0] = 0.0
    out = Linf(0.3).step(delta, grad, 0.1)
    torch.testing.assert_close(out, 0.1 * grad.sign())
    per_example = Linf(0.3).step(delta, grad, torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(per_example[1], 0.2 * grad[1].sign())


def test_l2_zero_gradient_gives_zero_step():
    delta = torch.full((3, 1, 4, 4), 0.01)
    grad = torch.randn(3, 1, 4, 4)
    grad[1] = 0.0
    out = L2(1.0).step(delta, grad, 0.5)
    assert torch.equal(out[1], delta[1])
    assert torch.isfinite(out).all()
    moved = _norm(out - delta, 2)
    torch.testing.assert_close(moved[[0, 2]], torch.full((2,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("scale", [1e-3, 1e-9, 1e-15, 1e-25, 1e-38])
def test_l2_tiny_gradient_still_gives_a_full_step(scale):
    """A norm floor (1e-6, 1e-12, ...) shrinks the steps of confident examples to nothing and makes
    the model look robust; only an exactly zero gradient may give a zero step."""
    grad = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * scale
    out = L2(2.0).step(torch.zeros_like(grad), grad, 0.25)
    torch.testing.assert_close(_norm(out, 2), torch.full((2,), 0.25, dtype=torch.float64))
    # the direction is the gradient's
    cos = torch.nn.functional.cosine_similarity(out.flatten(1).double(),
                                                grad.flatten(1).double() / scale, dim=1)
    assert (cos > 1 - 1e-5).all()


def test_l2_random_start_fills_the_ball():
    x = torch.full((200, 1, 28, 28), 0.5)
    g = torch.Generator().manual_seed(0)
    d = L2(2.0).random_start(x, g)
    n = _norm(d, 2)
    assert (n <= 2.0 + 1e-6).all()
    # uniform in a 784-d ball: almost all mass near the sphere, but not on it exactly
    assert n.min() > 1.8 and n.max() < 2.0 + 1e-6
    # uniform directions: the mean is near 0
    assert d.mean(dim=0).abs().max() < 0.05
    # the same generator seed gives the same start
    d2 = L2(2.0).random_start(x, torch.Generator().manual_seed(0))
    assert torch.equal(d, d2)
    # small images: radius distribution is visibly spread (u ** (1/d) with d = 2)
    xs = torch.full((2000, 1, 1, 2), 0.5)
    ns = _norm(L2(0.4).random_start(xs, g), 2)
    assert ns.max() <= 0.4 + 1e-6 and ns.min() < 0.05
    assert abs(ns.median().item() - 0.4 * math.sqrt(0.5)) < 0.02


# ------------------------------------------------------------------------------------ l_1 SLIDE


def test_slide_moves_the_top_percentile_with_l1_size_step_size():
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 1, 28, 28), 0.5)  # nothing blocked
    grad = torch.randn(x.shape, generator=g)
    for q in (99.0, 95.0, 80.0, 0.0):
        step = L1(10.0, q=q).step(torch.zeros_like(x), grad, 1.3, x)
        moved = (step != 0).flatten(1).sum(1)
        expected = 784 - max(math.ceil(q / 100 * 784), 1) + 1
        assert (moved == expected).all(), (q, moved)
        torch.testing.assert_close(_norm(step, 1), torch.full((4,), 1.3, dtype=torch.float64))
        # the moved coordinates are the largest |g| and go along sign(g)
        nz = step != 0
        assert ((step.sign() == grad.sign()) | ~nz).all()
        smallest_moved = torch.where(nz, grad.abs(), torch.inf).flatten(1).amin(1)
        largest_still = torch.where(nz, -torch.inf, grad.abs()).flatten(1).amax(1)
        assert (smallest_moved >= largest_still).all()


def test_slide_never_pushes_out_of_the_box():
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 1, 10, 10, generator=g) > 0.5).float()  # every pixel at an edge
    # the largest gradients all point outwards: they must be dropped
    grad = torch.where(x > 0.5, 1.0, -1.0) * (10 + torch.rand(x.shape, generator=g))
    inward = torch.rand(x.shape, generator=g) < 0.2
    grad = torch.where(inward, -grad.sign() * torch.rand(x.shape, generator=g), grad)
    step = L1(5.0, q=90.0).step(torch.zeros_like(x), grad, 0.8, x)
    assert ((x + step) >= 0).all() and ((x + step) <= 1).all()
    assert (step[~inward] == 0).all()
    assert (step[inward] != 0).any()
    torch.testing.assert_close(_norm(step, 1), torch.full((3,), 0.8, dtype=torch.float64))
    # all blocked: no step at all
    step = L1(5.0).step(torch.zeros_like(x), torch.where(x > 0.5, 1.0, -1.0), 0.8, x)
    assert torch.equal(step, torch.zeros_like(x))


def test_l1_random_start_spreads_over_the_ball():
    x = torch.full((100, 1, 28, 28), 0.5)
    d = L1(10.0).random_start(x, torch.Generator().manual_seed(0))
    n = _norm(d, 1)
    assert (n <= 10.0 * (1 + 1e-6)).all()
    assert n.std() > 0.01 and n.max() > 9.0
    assert (d > 0).any() and (d < 0).any()


# ------------------------------------------------------------------------------------- contains


def test_contains():
    x = torch.full((3, 1, 2, 2), 0.5)
    t = Linf(0.1)
    x_adv = x.clone()
    x_adv[0] += 0.1
    x_adv[1] += 0.11
    x_adv[2, 0, 0, 0] = 1.2
    assert t.contains(x, x_adv).tolist() == [True, False, False]
    assert L2(0.2).contains(x, x + 0.1).tolist() == [True] * 3  # l2 norm of 0.1 * ones(4) = 0.2
    assert L2(0.19).contains(x, x + 0.1).tolist() == [False] * 3
    assert L1(0.4).contains(x, x + 0.1).tolist() == [True] * 3
    assert L1(0.39).contains(x, x + 0.1).tolist() == [False] * 3
    # per-example budgets
    assert Linf(torch.tensor([0.0, 0.2, 0.05])).contains(x, x + 0.1).tolist() == [
        False, True, False]


def test_scaled():
    assert Linf(0.3).scaled(0.5).eps == pytest.approx(0.15)
    assert L1(10.0, q=95.0).scaled(0.2) == L1(2.0, q=95.0)
    rt = RotationTranslation(30.0, 3.0).scaled(0.5)
    assert (rt.max_rot, rt.max_trans) == (15.0, 1.5)
    with pytest.raises(ValueError):
        Linf(0.3).scaled(-1.0)


# ---------------------------------------------------------------------------------------- affine


def test_affine_parts_and_weights_0_and_1():
    a, b = Linf(0.3), L2(2.0)
    pa, pb = Affine(a, b, 0.25).parts
    assert pa.eps == pytest.approx(0.075) and pb.eps == pytest.approx(1.5)
    x = torch.rand(4, 1, 6, 6)
    g = torch.Generator().manual_seed(0)
    # weight 1: the l_2 part has no budget, membership is exactly l_inf membership
    one = Affine(a, b, 1.0)
    assert one.parts == (a, L2(0.0))
    da = torch.randn(x.shape, generator=g) * 0.2
    zero = torch.zeros_like(x)
    assert torch.equal(one.contains_parts(x, (da, zero)), a.contains(x, x + da))
    assert not one.contains_parts(x, (a.project(da, x), zero + 0.01)).any()
    # weight 0: the l_inf part has no budget
    nil = Affine(a, b, 0.0)
    assert nil.parts == (Linf(0.0), b)
    db = b.project(torch.randn(x.shape, generator=g), x)
    assert nil.contains_parts(x, (zero, db)).all()
    # a projected pair under weight 0 has a zero first part
    da, db = nil.project((torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)), x)
    assert torch.equal(da, zero) and bool(b.contains(x, x + db).all())
    # spatial, weight 0: transforms collapse to the identity
    srt = Affine(RotationTranslation(), Linf(0.3), 0.0)
    rt0, lin = srt.parts
    assert rt0.max_rot == 0 and rt0.max_trans == 0 and lin == Linf(0.3)


def test_affine_steps_alternate_between_parts():
    threat = Affine(Linf(0.3), L1(10.0), 0.5)
    x = torch.full((2, 1, 5, 5), 0.5)
    zero = torch.zeros_like(x)
    grad = torch.randn(x.shape)
    da, db = threat.step((zero, zero), grad, (0.1, 1.0), x, t=0)
    assert (da != 0).any() and torch.equal(db, zero)
    da, db = threat.step((zero, zero), grad, (0.1, 1.0), x, t=1)
    assert torch.equal(da, zero) and (db != 0).any()
    torch.testing.assert_close(_norm(db, 1), torch.full((2,), 1.0, dtype=torch.float64))
    # a spatial first part is never stepped
    sp = Affine(RotationTranslation(), Linf(0.3), 0.5)
    params = torch.tensor([[10.0, 1.0, -1.0], [0.0, 0.0, 0.0]])
    for t in range(3):
        pa, pb = sp.step((params, zero), grad, (1.0, 0.05), x, t)
        assert torch.equal(pa, params) and (pb != 0).any()
    # default step sizes: one per part, each part gets half the steps (all of them if spatial)
    sa, sb = threat.default_step_size(40)
    assert sa == pytest.approx(Linf(0.15).default_step_size(20))
    assert sb == pytest.approx(L1(5.0).default_step_size(20))
