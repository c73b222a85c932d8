"""The l_1 boundary attack: near the exact minimum on a linear model, what gradient attacks
cannot do on a model without gradients, valid outputs, restarts only where needed."""

from __future__ import annotations

import pytest
import torch
from test_fab import Linear  # the random linear 10-class model on 1 x 1 x 20 inputs
from torch import nn

from advlab import L1, Linf
from advlab.attacks import APGD, PGD
from advlab.attacks.boundary import BoundaryL1, boundary_l1
from advlab.attacks.fab import project_halfspace


def _exact_l1_distance(model, x, y):
    """Misclassified means some class t beats y: a half-space per t, whose closest point in
    the box is an exact fractional knapsack (``project_halfspace``); the minimum over t."""
    w = model.lin.weight
    flat = x.flatten(1)
    logits = model(x)
    best = torch.full((x.shape[0],), float("inf"))
    for t in range(10):
        normal = w[t] - w[y]  # (B, 20): z_t - z_y grows along it
        gap = logits.gather(1, y[:, None]).squeeze(1) - logits[:, t]
        d = project_halfspace(normal, gap, flat, 1)
        reach = (normal * d).sum(1) >= gap - 1e-5
        dist = torch.where(reach & (t != y), d.abs().sum(1), torch.full_like(best, float("inf")))
        best = torch.minimum(best, dist)
    return best


def test_comes_within_a_few_percent_of_the_exact_minimum_on_a_linear_model():
    model = Linear().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(32, 1, 1, 20, generator=gen)
    with torch.no_grad():
        y = model(x).argmax(1)
    exact = _exact_l1_distance(model, x, y)
    assert torch.isfinite(exact).all()
    res = boundary_l1(model, x, y, L1(19.0), steps=100, restarts=2, classes=9)
    found = -res.loss
    assert res.success.all()
    assert (found >= exact - 1e-4).all()  # no point closer than the exact minimum
    assert (found <= exact * 1.05 + 1e-3).all(), (found / exact).max()
    # with the budget just below the minimum nothing is broken, just above everything is
    below = boundary_l1(model, x, y, L1(1.0), steps=100, restarts=2, classes=9)
    assert torch.equal(below.success, exact <= 1.0)


class Thresholded(nn.Module):
    """A linear classifier on the input thresholded at 0.5: its gradient is zero everywhere,
    as a fully masked l_inf-trained MNIST model's nearly is."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(10, 64, generator=gen))

    def forward(self, x):
        on = (x.flatten(1) > 0.5).float() + 0 * x.flatten(1)  # zero gradient, but connected
        return on @ self.w.t()


def test_breaks_a_model_without_gradients_where_gradient_attacks_cannot():
    model = Thresholded().eval()
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(16, 1, 8, 8, generator=gen) > 0.5).float()
    with torch.no_grad():
        y = model(x).argmax(1)
    threat = L1(4.0)
    for attack in (APGD(threat, steps=50), PGD(threat, steps=50)):
        assert not attack(model, x, y).success.any()
    res = BoundaryL1(threat, steps=20, restarts=3)(model, x, y)
    assert res.success.sum() >= 12  # flipping a few pixels just across 0.5 costs ~0.5 each
    assert (threat.norm(res.x_adv - x) <= 4.0 + 1e-5).all()


def test_outputs_in_the_ball_and_box_restarts_only_where_needed(standard_model, mnist_test):
    x, y = mnist_test
    x, y = x[:24], y[:24]
    threat = L1(torch.linspace(2.0, 12.0, 24))
    calls = []
    model = _Counting(standard_model, calls)
    res = boundary_l1(model, x, y, threat, steps=8, restarts=3)
    d = (res.x_adv - x).flatten(1).abs().sum(1)
    assert (d <= threat.eps + 1e-4).all()
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    with torch.no_grad():
        wrong = standard_model(res.x_adv).argmax(1) != y
    assert torch.equal(res.success, wrong)
    # the first restart sees every image; the later ones only those it left unbroken
    first = boundary_l1(standard_model, x, y, threat, steps=8, restarts=1)
    left = int((~first.success).sum())
    assert 0 < left < 24
    assert calls.count(24) >= 100 and calls.count(left) >= 100  # a noise level: a pass each
    again = boundary_l1(standard_model, x, y, threat, steps=8, restarts=3)
    assert torch.equal(again.x_adv, res.x_adv)  # deterministic by default, global RNG alone


class _Counting(nn.Module):
    def __init__(self, model, calls):
        super().__init__()
        self.model, self.calls = model, calls

    def forward(self, x):
        self.calls.append(x.shape[0])
        return self.model(x)


def test_model_mode_restored_and_clear_errors(standard_model, mnist_test):
    x, y = mnist_test
    standard_model.train()
    try:
        state = torch.random.get_rng_state()
        BoundaryL1(L1(10.0), steps=2, restarts=1)(standard_model, x[:4], y[:4])
        assert torch.equal(state, torch.random.get_rng_state())
        assert standard_model.training
        assert all(p.requires_grad for p in standard_model.parameters())
    finally:
        standard_model.eval()
    with pytest.raises(TypeError, match="l_1 ball"):
        boundary_l1(standard_model, x[:2], y[:2], Linf(0.3))
    with pytest.raises(ValueError, match="restarts >= 1"):
        boundary_l1(standard_model, x[:2], y[:2], L1(10.0), restarts=0)


def test_the_trusted_l1_stack_runs_it_after_the_square_attack():
    """Last but AutoAttack's shrinking-budget l_1 attacks, two pairs (with advlab's and with
    AutoAttack's sparsity; tests/test_apgd_shrinking.py)."""
    from advlab import presets
    from advlab.attacks import Square

    trusted = presets.trusted_attacks("mnist")
    kinds = [type(a) for a in trusted["l1"]]
    last = trusted["l1"][kinds.index(BoundaryL1)]
    assert kinds.index(BoundaryL1) == kinds.index(Square) + 1 == len(kinds) - 5
    assert last.threat == trusted["l1"][0].threat
    assert (last.steps, last.restarts) == (50, 6)
    assert not any(isinstance(a, BoundaryL1) for name in ("linf", "l2")
                   for a in trusted[name])
    assert not any(isinstance(a, BoundaryL1) for s in presets.attacks("mnist", "lite").values()
                   for a in s)  # live numbers stay cheap


def test_the_start_is_misclassified_and_sparsify_only_resets_pixels(standard_model, mnist_test):
    from advlab.attacks.boundary import salt_and_pepper, sparsify

    x, y = mnist_test
    x, y = x[:16], y[:16]
    gen = torch.Generator().manual_seed(3)
    z, found = salt_and_pepper(standard_model, x, y, 50, gen)
    assert found.all()
    with torch.no_grad():
        assert (standard_model(z).argmax(1) != y).all()
    s = sparsify(standard_model, x, y, z, gen)
    with torch.no_grad():
        assert (standard_model(s).argmax(1) != y).all()  # still wrong
    assert ((s == x) | (s == z)).all()  # each pixel the image's or the noise's
    before, after = (z - x).abs().flatten(1).sum(1), (s - x).abs().flatten(1).sum(1)
    assert (after <= before).all() and (after < before / 2).all()
