"""Targeted APGD (APGD-T): finds what untargeted APGD misses, valid outputs, only on survivors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advlab import L1, L2, Linf
from advlab.attacks import apgd
from advlab.attacks.apgd import APGDT, apgd_targeted, dlr_targeted_loss
from advlab.attacks.fab import FABT

THREATS = [Linf(0.3), L2(2.0), L1(10.0)]
IDS = ["linf", "l2", "l1"]
D = 50  # the coordinates that lead to the reachable class


class Decoy(nn.Module):
    """A linear 4-class model on (B, 1, 1, 1 + D) inputs, built so that the runner-up is a decoy.

    At x = 0.5 everywhere the logits are (1, 0.9, 0.5, 0) and class 0 is right. Class 1 (the
    runner-up, where the untargeted DLR gradient points) moves only with pixel 0 by 0.15 per
    unit: it stays below 1 in the box. Class 2 moves with the other D pixels by 0.06 each: the
    budget (l_inf 0.3, l_2 2, l_1 10) spent there lifts it to 1.1-1.4, above class 0.
    """

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1 + D, 4)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.weight[1, 0] = 0.15
            self.lin.weight[2, 1:] = 0.06
            self.lin.bias.copy_(torch.tensor([1.0, 0.9, 0.5, 0.0]))
        self.rows = 0  # examples seen by forward, to check what the attack spends

    def forward(self, x):
        self.rows += x.shape[0]
        return self.lin(x.flatten(1) - 0.5)


def decoy_batch(n=6):
    return torch.full((n, 1, 1, 1 + D), 0.5), torch.zeros(n, dtype=torch.long)


@pytest.mark.parametrize("threat", THREATS, ids=IDS)
def test_targeted_finds_what_untargeted_misses(threat):
    model, (x, y) = Decoy(), decoy_batch()
    untargeted = apgd(model, x, y, threat, steps=20, restarts=3, loss="dlr",
                      generator=torch.Generator().manual_seed(0))
    assert not untargeted.success.any()  # it climbs towards class 1, which it cannot reach
    runner_up_only = APGDT(threat, steps=20, targets=1)(model, x, y)
    assert not runner_up_only.success.any()
    res = APGDT(threat, steps=20, targets=9)(model, x, y)  # 9 > K - 1 = 3: every other class
    assert res.success.all()
    assert bool(threat.contains(x, res.x_adv).all())
    with torch.no_grad():
        assert torch.equal(model(res.x_adv).argmax(1), torch.full_like(y, 2))


def test_only_examples_still_standing_are_attacked():
    model, (x, y) = Decoy(), decoy_batch(6)
    y[:2] = 3  # already misclassified (the model says 0)
    model.rows = 0
    steps = 10
    res = apgd_targeted(model, x, y, Linf(0.3), targets=3, steps=steps,
                        generator=torch.Generator().manual_seed(0))
    assert res.success.all()
    assert torch.equal(res.x_adv[:2], x[:2])  # not attacked: returned as they are
    # one clean pass, then targets 1 and 2 on the 4 standing examples; target 3 never runs
    attacked = model.rows
    model.rows = 0
    y_all = torch.full_like(y, 3)  # every example already misclassified: no target runs
    apgd_targeted(model, x, y_all, Linf(0.3), targets=3, steps=steps,
                  generator=torch.Generator().manual_seed(0))
    checks = model.rows - 6  # the input checks' own probe of the model, if any
    assert attacked == checks + 6 + 2 * 4 * (steps + 1)


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[:40], y[:40]


TARGETED = {"apgdt": lambda t: APGDT(t, steps=5, targets=3),
            "fabt": lambda t: FABT(t, steps=10, targets=3)}


@pytest.mark.parametrize("kind", TARGETED)
@pytest.mark.parametrize("threat", THREATS, ids=IDS)
def test_outputs_in_threat_and_box_success_is_misclassified(standard_model, batch, threat, kind):
    """Both targeted attacks of the trusted stack: targeted APGD and targeted FAB."""
    x, y = batch
    small = type(threat)(threat.eps / 4)  # not everything breaks
    res = TARGETED[kind](small)(standard_model, x, y)
    assert torch.equal(TARGETED[kind](small)(standard_model, x, y).x_adv, res.x_adv)  # same again
    assert bool(small.contains(x, res.x_adv).all())
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    with torch.no_grad():
        wrong = standard_model(res.x_adv).argmax(1) != y
    assert torch.equal(wrong, res.success)
    assert 0 < int(res.success.sum()) < x.shape[0]


def test_per_example_budgets_and_determinism(standard_model, batch):
    x, y = batch
    eps = torch.linspace(0.5, 4.0, x.shape[0])
    threat = L1(eps)
    a = APGDT(threat, steps=4, targets=2, seed=3)(standard_model, x, y)
    b = APGDT(threat, steps=4, targets=2, seed=3)(standard_model, x, y)
    assert bool(threat.contains(x, a.x_adv).all())
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.success, b.success)


def test_model_mode_restored(standard_model, batch):
    x, y = batch
    standard_model.train()
    try:
        APGDT(Linf(0.1), steps=2, targets=1)(standard_model, x[:8], y[:8])
        assert standard_model.training
        assert all(p.requires_grad for p in standard_model.parameters())
    finally:
        standard_model.eval()


def test_dlr_targeted_loss():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0], [0.0, 2.0, 1.0, -1.0]])
    y, t = torch.tensor([0, 0]), torch.tensor([1, 1])
    d = dlr_targeted_loss(logits, y, t)
    assert d[0] < 0 < d[1]  # the target below the true class: negative; above: positive
    # z_(1) - (z_(3) + z_(4)) / 2 = 3 - (0 - 1) / 2 = 3.5 for the first row
    assert torch.allclose(d[0], torch.tensor(-2.0 / 3.5))
    assert torch.allclose(dlr_targeted_loss(7 * logits - 3, y, t), d)


def test_clear_errors():
    model, (x, y) = Decoy(), decoy_batch(2)
    with pytest.raises(ValueError, match="targets >= 1"):
        apgd_targeted(model, x, y, Linf(0.3), targets=0)
    with pytest.raises(TypeError, match="Linf, L2 or L1"):
        apgd_targeted(model, x, y, "linf")
    three = nn.Sequential(nn.Flatten(), nn.Linear(1 + D, 3))
    with pytest.raises(ValueError, match="at least 4 classes"):
        apgd_targeted(three, x, y, Linf(0.3))
