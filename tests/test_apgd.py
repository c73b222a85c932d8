"""APGD and l1-APGD: valid outputs, deterministic, and at least as strong as PGD / SLIDE."""

from __future__ import annotations

import pytest
import torch

from advlab import L1, L2, Linf
from advlab.attacks import APGD, PGD, apgd
from advlab.attacks.apgd import checkpoints, dlr_loss


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[:60], y[:60]


def test_checkpoints_follow_the_paper():
    w = checkpoints(100)
    assert w[:4] == [22, 41, 57, 70]  # p = 0.22, 0.41, 0.57, 0.70, ...
    assert w == sorted(set(w)) and w[-1] <= 100


def test_dlr_loss_sign_and_scale_invariance():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, -1.0]])
    y = torch.tensor([0, 0])
    d = dlr_loss(logits, y)
    assert d[0] < 0 < d[1]  # correct: negative; wrong: positive
    assert torch.allclose(dlr_loss(5 * logits + 2, y), d)


@pytest.mark.parametrize("threat", [Linf(0.3), L2(2.0), L1(10.0)], ids=["linf", "l2", "l1"])
def test_outputs_in_threat_and_box(standard_model, batch, threat):
    x, y = batch
    res = APGD(threat, steps=8)(standard_model, x, y)
    assert bool(threat.contains(x, res.x_adv).all())
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    with torch.no_grad():
        wrong = standard_model(res.x_adv).argmax(1) != y
    assert torch.equal(wrong, res.success)


def test_per_example_budgets_and_restarts(standard_model, batch):
    x, y = batch
    eps = torch.linspace(0.5, 4.0, x.shape[0])
    threat = L1(eps)
    res = apgd(standard_model, x, y, threat, steps=5, restarts=2,
               generator=torch.Generator().manual_seed(0))
    assert bool(threat.contains(x, res.x_adv).all())


def test_deterministic(standard_model, batch):
    x, y = batch
    a = APGD(L1(5.0), steps=5, seed=1)(standard_model, x[:20], y[:20])
    b = APGD(L1(5.0), steps=5, seed=1)(standard_model, x[:20], y[:20])
    assert torch.equal(a.x_adv, b.x_adv)


def test_linf_apgd_breaks_standard_model(standard_model, batch):
    x, y = batch
    res = APGD(Linf(0.3), steps=10, loss="dlr")(standard_model, x, y)
    assert res.success.float().mean() >= 0.95


def test_l1_apgd_at_least_as_strong_as_slide(standard_model, batch):
    x, y = batch
    slide = PGD(L1(10.0), steps=30)(standard_model, x, y).success.float().mean().item()
    ours = APGD(L1(10.0), steps=30)(standard_model, x, y).success.float().mean().item()
    assert ours >= slide - 0.02, (ours, slide)
    assert ours >= 0.3


def test_l2_direction_has_no_norm_floor():
    """Gradients of size 1e-20 give the same step as unscaled ones (issue 14: no norm floor).

    APGD steps along ``threat.direction``, the one home of each threat's steepest ascent."""
    g = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x = torch.full_like(g, 0.5)
    unit = L2(2.0).direction(g, x)
    assert torch.allclose(unit.flatten(1).norm(dim=1), torch.ones(3))
    assert torch.allclose(L2(2.0).direction(g * 1e-20, x), unit, atol=1e-6)
    assert torch.equal(L2(2.0).direction(torch.zeros_like(g), x), torch.zeros_like(g))
    assert torch.equal(Linf(0.3).direction(g * 1e-20, x), g.sign())
    # the step is the direction times the step size, from any delta
    d = torch.zeros_like(g)
    assert torch.allclose(L2(2.0).step(d, g * 1e-20, 0.5), 0.5 * unit, atol=1e-6)


def test_l2_apgd_moves_on_a_model_with_tiny_gradients(standard_model, batch):
    """Logits scaled by 1e-20 (gradients ~1e-20, their squares underflow): APGD still steps."""
    x, y = batch[0][:8], batch[1][:8]

    class Tiny(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, z):
            return self.inner(z) * 1e-20

    res = apgd(Tiny(standard_model), x, y, L2(2.0), steps=3, loss="margin", random_start=False)
    moved = (res.x_adv - x).flatten(1).norm(dim=1)
    assert bool((moved > 1.0).all()), moved  # a norm floor of 1e-12 moved ~1e-7
