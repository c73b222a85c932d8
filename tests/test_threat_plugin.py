"""A new threat model in one file: l_0 (at most eps pixels change, each anywhere in [0, 1]).

The threat below is the worked example of docs/threats.md. It implements the ``ThreatModel``
interface and nothing else in the library changes: PGD, APGD and the union evaluator attack it,
and one ``register`` line gives it a name, budgets and the preset attacks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from advlab import evaluate_union
from advlab.attacks import APGD, PGD, apgd, pgd
from advlab.presets import BUDGETS, attacks, threats
from advlab.projections import as_batch_eps
from advlab.threats import Linf, ThreatInfo, ThreatModel, register, registry


@dataclass(frozen=True)
class L0(ThreatModel):
    """{delta : at most eps pixels nonzero, x + delta in [0, 1]}; eps a count of pixels."""

    eps: float = 10.0
    name = "l0"
    additive = True  # delta has x's shape and x_adv = x + delta: APGD can attack it

    def random_start(self, x, generator=None):
        return self.project(torch.empty_like(x).uniform_(-1, 1, generator=generator), x)

    def direction(self, grad, x_adv=None, k=None):
        return grad.sign()  # every pixel moves; the projection keeps the eps that moved most

    def project(self, delta, x):
        d = ((x + delta).clamp(0, 1) - x).flatten(1)  # the box first, then the eps largest
        order = d.abs().argsort(dim=1, descending=True)
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(d.shape[1], device=d.device).expand_as(order))
        keep = rank < self.eps_for(x).round().long()[:, None]
        return (d * keep).view_as(delta)

    def noise(self, x, size=None, generator=None):
        k = self.eps_for(x) if size is None else as_batch_eps(size, x.shape[0], x)
        u = torch.rand(x.shape, generator=generator, device=x.device).flatten(1)
        chosen = u.argsort(dim=1) < k.round().long()[:, None]  # k random pixels
        return (chosen * (u * 2 - 1).sign()).view_as(x).to(x.dtype)  # each to 0 or 1

    def diameter(self, x):
        return float(math.prod(x.shape[1:]))

    def norm(self, delta):
        return (delta.flatten(1) != 0).sum(dim=1).to(delta.dtype)

    def default_step_size(self, steps):
        return 0.5  # half the pixel range a step: sign steps, then the projection


@pytest.fixture
def l0_registered():
    """The one registry line, undone after the test (other tests see the paper's threats)."""
    register(ThreatInfo("l0", L0, "l_0", budgets={"mnist": 12.0}))
    yield
    registry.unregister("l0")


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[:32], y[:32]


def test_l0_geometry():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 6, 6, generator=g)
    threat = L0(torch.tensor([0.0, 1.0, 3.0, 5.0]))
    for delta in (threat.random_start(x, g), threat.noise(x, generator=g),
                  threat.project(torch.randn(4, 1, 6, 6, generator=g), x)):
        assert threat.contains(x, (x + delta).clamp(0, 1)).all()
    step = threat.step(torch.zeros_like(x), torch.randn_like(x), 0.5, x)
    assert threat.norm(threat.project(step, x)).tolist() == [0.0, 1.0, 3.0, 5.0]
    sub = threat.restrict(torch.tensor([3, 1]))  # per-example budgets follow the examples
    assert sub.eps.tolist() == [5.0, 1.0]


def test_pgd_and_apgd_attack_the_toy_threat(standard_model, batch):
    x, y = batch
    threat = L0(15.0)
    gen = torch.Generator().manual_seed(0)
    clean_err = (standard_model(x).argmax(1) != y).float().mean().item()
    res_pgd = pgd(standard_model, x, y, threat, steps=20, restarts=2, generator=gen)
    res_apgd = apgd(standard_model, x, y, threat, steps=20, generator=gen)
    for res in (res_pgd, res_apgd):
        assert threat.contains(x, res.x_adv).all()
        assert res.success.float().mean().item() > clean_err + 0.1
    # per-example budgets: a budget of 0 leaves its image alone
    eps = torch.tensor([0.0, 15.0]).repeat(16)
    res = pgd(standard_model, x, y, L0(eps), steps=5, restarts=2, generator=gen)
    assert torch.equal(res.x_adv[::2], x[::2])
    assert L0(eps).contains(x, res.x_adv).all()


def test_evaluate_union_on_the_toy_threat(standard_model, batch):
    x, y = batch
    stacks = {"l0": [APGD(L0(15.0), steps=10), PGD(L0(15.0), steps=10)],
              "linf": [PGD(Linf(0.3), steps=10)]}
    out = evaluate_union(standard_model, (x, y), stacks, progress=False)
    assert out.accuracy("l0") < out.clean_accuracy
    assert torch.equal(out.union, out.clean & out.robust["l0"] & out.robust["linf"])


def test_one_registry_line_gives_name_budget_and_presets(l0_registered, standard_model, batch):
    assert BUDGETS["mnist"]["l0"] == 12.0 and threats("mnist")["l0"] == L0(12.0)
    stack = attacks("mnist", "fast", include=["l0"])["l0"]
    assert [type(a).__name__ for a in stack] == ["PGD"] and stack[0].threat == L0(12.0)
    x, y = batch
    out = evaluate_union(standard_model, (x[:8], y[:8]), attacks("mnist", "fast",
                         include=["l0", "linf"]), progress=False)
    assert set(out.robust) == {"l0", "linf"}


def test_unregistered_afterwards():
    assert "l0" not in BUDGETS["mnist"] and "l0" not in threats("mnist")
