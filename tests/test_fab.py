"""Targeted FAB (FAB-T): exact projections, the distance on a linear model, valid outputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlab import L1, L2, Linf
from advlab.attacks.fab import FABT, fab_targeted, project_halfspace

THREATS = [Linf(0.3), L2(2.0), L1(10.0)]
IDS = ["linf", "l2", "l1"]
DUAL = {math.inf: 1, 2: 2, 1: math.inf}  # the distance to a hyperplane uses the dual norm


@pytest.mark.parametrize("p", [math.inf, 2, 1], ids=IDS)
def test_projection_reaches_the_halfspace_in_the_box_and_is_smallest(p):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 12, generator=g)
    x = torch.rand(64, 12, generator=g)
    c = torch.rand(64, generator=g) * 0.5
    c[:4] = -1.0  # already inside: no step
    d = project_halfspace(w, c, x, p)
    assert torch.equal(d[:4], torch.zeros_like(d[:4]))
    assert (x + d >= -1e-6).all() and (x + d <= 1 + 1e-6).all()
    reachable = (w.abs() * torch.where(w > 0, 1 - x, x)).sum(1) >= c
    assert ((w * d).sum(1) >= c - 1e-4)[reachable].all()
    # no random point of the box that reaches the half-space is closer (in l_p)
    norm = d.norm(p=p, dim=1)
    for _ in range(200):
        z = torch.rand(64, 12, generator=g) - x  # a step to a random point of the box
        scale = (c / (w * z).sum(1)).clamp(0, 1)  # shrink it onto the hyperplane if it gets there
        ok = ((w * z).sum(1) >= c) & reachable
        z = z * scale[:, None]
        assert (norm[ok] <= z[ok].norm(p=p, dim=1) + 1e-4).all()


@pytest.mark.parametrize("p", [math.inf, 2], ids=["linf", "l2"])
def test_projection_is_exact_when_gradients_span_many_orders_of_magnitude(p):
    """Masked models have input gradients from 1e-12 to 1 (mnist-linf: half its pixels below
    1e-8). The step must reach the hyperplane exactly and be the KKT point, one t for every
    pixel the box does not stop: |d_i| = t * scale_i (scale 1 for l_inf, |w_i| for l_2)."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(32, 784, generator=g) * 10 ** (-12 * torch.rand(32, 784, generator=g))
    x = torch.rand(32, 784, generator=g)
    room = torch.where(w > 0, 1 - x, x)
    most = (w.abs() * room).sum(1)
    c = most * torch.rand(32, generator=g) * 0.9  # reachable, some needing most of the box
    d = project_halfspace(w, c, x, p)
    assert torch.allclose((w * d).sum(1), c, rtol=1e-4)
    scale = torch.ones_like(w) if p == math.inf else w.abs()
    free = d.abs() < room - 1e-6  # not stopped by the box
    t = torch.where(free, d.abs() / scale, torch.nan).nanmedian(dim=1).values
    assert torch.allclose(d.abs()[free], (t[:, None] * scale)[free], rtol=1e-3, atol=1e-7)
    stopped = ~free & (w != 0)  # at the box's edge: it would have gone further
    assert ((room / scale)[stopped] <= (t[:, None] * (1 + 1e-3)).expand_as(w)[stopped]).all()


class Linear(nn.Module):
    """A random linear 10-class model on 1 x 1 x 20 inputs near 0.5 (the box does not bind)."""

    def __init__(self, seed=0):
        super().__init__()
        self.lin = nn.Linear(20, 10)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(seed)
            self.lin.weight.copy_(torch.randn(10, 20, generator=gen))
            self.lin.bias.copy_(torch.randn(10, generator=gen) * 0.3)

    def forward(self, x):
        return self.lin(x.flatten(1) - 0.5)


@pytest.mark.parametrize("threat", THREATS, ids=IDS)
def test_finds_the_minimal_distance_on_a_linear_model(threat):
    """On a linear model the distance to class t's boundary is known, (z_y - z_t) /
    ||w_y - w_t||_dual. Aimed at the runner-up, FAB-T must come within a few percent of its
    boundary, and no closer than the nearest boundary of any class; with a budget just above
    the nearest boundary, aimed at every class, each example breaks, just below none does."""
    model = Linear()
    x = 0.5 + 0.01 * torch.randn(16, 1, 1, 20, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = model(x)
    y = z.argmax(1)
    w = model.lin.weight
    gap = z.gather(1, y[:, None]) - z  # (B, 10) z_y - z_t
    dual = (w[y][:, None, :] - w[None]).norm(p=DUAL[threat.lp], dim=2)  # (B, 10)
    dist = torch.where(gap > 0, gap / dual, torch.full_like(gap, math.inf))
    nearest = dist.amin(dim=1)
    runner_up = dist.gather(1, z.scatter(1, y[:, None], -math.inf).argmax(1, keepdim=True))[:, 0]
    assert (runner_up < 0.2).all()  # the box does not bind: every pixel stays in [0.3, 0.7]
    res = fab_targeted(model, x, y, type(threat)(1.0), targets=1, steps=30)
    found = -res.loss
    assert res.success.all()
    assert (found >= nearest * (1 - 1e-3)).all()  # nothing is closer than the boundary
    assert (found <= runner_up * 1.06).all(), found / runner_up
    above = fab_targeted(model, x, y, type(threat)(nearest * 1.1), targets=9, steps=30)
    below = fab_targeted(model, x, y, type(threat)(nearest * 0.95), targets=9, steps=30)
    assert above.success.all() and not below.success.any()


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[:40], y[:40]


# outputs in the threat model and the box, success = misclassified, deterministic: checked with
# targeted APGD's in tests/test_apgd_targeted.py


def test_model_mode_restored_and_clear_errors(standard_model, batch):
    x, y = batch
    standard_model.train()
    try:
        FABT(Linf(0.1), steps=2, targets=1)(standard_model, x[:8], y[:8])
        assert standard_model.training
        assert all(p.requires_grad for p in standard_model.parameters())
    finally:
        standard_model.eval()
    with pytest.raises(TypeError, match="Linf, L2 or L1"):
        fab_targeted(standard_model, x[:2], y[:2], "linf")
    with pytest.raises(ValueError, match="targets >= 1"):
        fab_targeted(standard_model, x[:2], y[:2], Linf(0.3), targets=0)
    with pytest.raises(ValueError, match="p must be"):
        project_halfspace(torch.ones(1, 2), torch.ones(1), torch.zeros(1, 2), 3)


def test_skip_runs_only_the_lower_ranked_targets(standard_model, batch):
    """FAB-T at 9 targets = FAB-T at the top 3, then at the classes ranked 4th to 9th on the
    rest (the strong stack's split): the per-example distances agree, and each of the two
    parts finds points the other does not aim at."""
    x, y = batch
    threat = L2(0.6)  # small enough that some examples need a lower-ranked class
    whole = fab_targeted(standard_model, x, y, threat, targets=9, steps=10)
    top = fab_targeted(standard_model, x, y, threat, targets=3, steps=10)
    rest = fab_targeted(standard_model, x, y, threat, targets=9, steps=10, skip=3)
    best = torch.maximum(top.loss, rest.loss)  # loss: minus the closest distance found
    assert torch.allclose(whole.loss[best.isfinite()], best[best.isfinite()], atol=1e-4)
    assert torch.equal(whole.success, top.success | rest.success)
    assert (rest.success & ~top.success).any() or (top.loss > rest.loss).any()
    with pytest.raises(ValueError, match="skip must be in"):
        fab_targeted(standard_model, x[:2], y[:2], threat, targets=3, skip=3)


def test_the_strong_stack_ends_with_the_lower_ranked_fab_targets():
    """l_inf: FAB-T at the top 3, ..., FAB-T at the classes ranked 4th to 9th; l_2 the same,
    then FAB-T at all 9 from random starts; both end with Square at 5000 queries."""
    from advlab.presets import trusted_attacks
    from advlab.zoo.measure import describe_attack

    for name, tail in (("linf", 2), ("l2", 3)):
        stack = trusted_attacks("mnist", include=[name])[name]
        fabs = [a for a in stack if isinstance(a, FABT)]
        more = stack[-tail]
        assert isinstance(more, FABT) and more.skip == fabs[0].targets and more.targets == 9
        assert describe_attack(more) == "FABT targets 4-9 x 100 steps"
        assert describe_attack(stack[-1]) == "Square 5000 queries seed 1"
    last = stack[-2]
    assert last.random_start and last.targets == 9 and not last.skip
    assert describe_attack(last) == "FABT 9 targets x 100 steps from random starts"


def test_random_starts_are_seeded_and_valid(standard_model, batch):
    """From random starts FAB-T depends on the seed and only on it; every output lies in the
    threat model and the box, and success means misclassified when evaluated on its own."""
    x, y = batch
    threat = L2(0.6)
    a = FABT(threat, steps=10, targets=3, random_start=True, seed=1)(standard_model, x, y)
    b = FABT(threat, steps=10, targets=3, random_start=True, seed=1)(standard_model, x, y)
    c = FABT(threat, steps=10, targets=3, random_start=True, seed=2)(standard_model, x, y)
    assert torch.equal(a.x_adv, b.x_adv) and not torch.equal(a.x_adv, c.x_adv)
    for r in (a, c):
        assert threat.contains(x, r.x_adv).all()
        with torch.no_grad():
            wrong = torch.cat([standard_model(r.x_adv[i:i + 1]).argmax(1) for i in range(len(y))])
        assert torch.equal(r.success, wrong != y) and r.success.any()
    with pytest.raises(ValueError, match="restarts >= 1"):
        fab_targeted(standard_model, x[:2], y[:2], threat, restarts=0)
