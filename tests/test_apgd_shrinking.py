"""APGD with a shrinking budget (AutoAttack's l_1 version: 3, 2, 1 x eps): the step split, the
argument checks, and that only the last stage, at eps, can claim success."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advlab import L1, L2
from advlab.attacks.apgd import APGD, APGDT, apgd, apgd_targeted, stage_steps


class TwoClassLinear(nn.Module):
    """Class 0 unless sum(x) exceeds ``margin`` over the image's sum: the l_1 distance to the
    boundary from an image is exactly ``margin`` (every pixel counts once; the box binds at 1)."""

    def __init__(self, x0: torch.Tensor, margin: float):
        super().__init__()
        self.register_buffer("base", x0.flatten(1).sum(1))
        self.margin = margin

    def forward(self, x):
        s = x.flatten(1).sum(1) - self.base[: x.shape[0]] - self.margin
        low = torch.full_like(s, -20.0)  # classes 2, 3 never win (APGD-T's DLR needs 4)
        return torch.stack([-s, s, low, low - 1], dim=1)


def test_stage_steps_split_30_30_40():
    assert stage_steps(100, 3) == [30, 30, 40]
    assert stage_steps(10, 3) == [3, 3, 4]
    assert stage_steps(7, 1) == [7]
    assert sum(stage_steps(33, 2)) == 33


@pytest.mark.parametrize("scales", [(2, 3, 1), (3, 2), (1, 1), (0.5, 1)])
def test_bad_schedules_are_refused(scales):
    x = torch.full((2, 1, 4, 4), 0.2)
    model = TwoClassLinear(x, 1.0)
    with pytest.raises(ValueError, match="eps_scales must decrease and end at 1"):
        apgd(model, x, torch.zeros(2, dtype=torch.long), L1(1.0), steps=6, eps_scales=scales)


@pytest.mark.parametrize("steps", [2, 4])  # 4: 2 + 2 for the large budgets leave none for eps
def test_too_few_steps_for_the_stages_are_refused(steps):
    x = torch.full((1, 1, 4, 4), 0.2)
    with pytest.raises(ValueError, match="at least one step each"):
        apgd(TwoClassLinear(x, 1.0), x, torch.zeros(1, dtype=torch.long), L1(1.0), steps=steps,
             eps_scales=(3, 2, 1))


@pytest.mark.parametrize("sparsity", ["mass", "l0"])
@pytest.mark.parametrize("attack", [apgd, apgd_targeted], ids=["apgd", "apgdt"])
def test_success_only_counts_at_eps(attack, sparsity):
    """The boundary lies at l_1 distance 2.5: inside the 3 x eps and 2 x eps balls of eps = 1.5,
    outside eps. The large stages reach it; the result must not claim it, and must lie in eps."""
    x = torch.full((3, 1, 8, 8), 0.2)
    y = torch.zeros(3, dtype=torch.long)
    model = TwoClassLinear(x, 2.5)
    kw = {"targets": 1, "sparsity": sparsity} if attack is apgd_targeted else {"sparsity": sparsity}
    res = attack(model, x, y, L1(1.5), steps=30, eps_scales=(3, 2, 1),
                 generator=torch.Generator().manual_seed(0), **kw)
    assert not res.success.any()
    assert L1(1.5).contains(x, res.x_adv).all()
    # with eps = 3 the last stage reaches the boundary: success is real and within eps
    res = attack(model, x, y, L1(3.0), steps=30, eps_scales=(3, 2, 1),
                 generator=torch.Generator().manual_seed(0), **kw)
    assert res.success.all()
    assert L1(3.0).contains(x, res.x_adv).all()
    assert (model(res.x_adv).argmax(1) != y).all()


def test_plain_schedule_is_plain_apgd():
    """eps_scales=(1,) is bit for bit the APGD the stored results were measured with."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 1, 6, 6, generator=g)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 10))
    y = torch.arange(4)
    a = APGD(L2(0.5), steps=12, seed=1)(model, x, y)
    b = APGD(L2(0.5), steps=12, seed=1, eps_scales=(1,))(model, x, y)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.loss, b.loss)


def test_the_strong_l1_stack_ends_with_autoattacks_l1_version():
    from advlab.presets import trusted_attacks
    from advlab.zoo.measure import describe_attack

    stack = trusted_attacks("mnist", include=["l1"])["l1"]
    for (untargeted, targeted), sparsity, said in (
            (stack[-4:-2], "mass", ""), (stack[-2:], "l0", " with L0 sparsity")):
        assert isinstance(untargeted, APGD) and untargeted.eps_scales == (3, 2, 1)
        assert untargeted.restarts == 5 and untargeted.sparsity == sparsity
        assert isinstance(targeted, APGDT) and targeted.targets == 5
        assert targeted.sparsity == sparsity
        assert describe_attack(untargeted) == f"APGD 100 steps x 5 restarts at 3-2-1 x eps{said}"
        assert describe_attack(targeted) == f"APGDT 5 targets x 100 steps at 3-2-1 x eps{said}"
    for name in ("linf", "l2"):  # only l_1's stack has them
        assert all(getattr(a, "eps_scales", (1.0,)) == (1.0,)
                   for a in trusted_attacks("mnist", include=[name])[name])


def test_l0_sparsity_is_refused_off_l1_and_unknown_names_are_refused():
    x = torch.full((2, 1, 4, 4), 0.2)
    y = torch.zeros(2, dtype=torch.long)
    model = TwoClassLinear(x, 1.0)
    with pytest.raises(ValueError, match="schedule for l_1 steps"):
        apgd(model, x, y, L2(1.0), steps=6, sparsity="l0")
    with pytest.raises(ValueError, match="sparsity must be 'mass'"):
        apgd_targeted(model, x, y, L1(1.0), steps=6, targets=1, sparsity="dense")


def test_l0_sparsity_on_a_trained_model_is_seeded_valid_and_dense_at_first(standard_model,
                                                                           mnist_test):
    """AutoAttack's schedule: Gaussian noise projected onto the largest ball (so on its surface,
    noise of l_1 size ~600 being far outside), outputs in the l_1 ball and the box, success =
    misclassified, the same result for the same seed and another for another."""
    from advlab.attacks.apgd import _start

    x, y = mnist_test[0][:40], mnist_test[1][:40]
    threat = L1(10.0)
    start = _start(threat, x, (3.0, 2.0, 1.0), True, torch.Generator().manual_seed(0), "l0")
    assert L1(30.0).contains(x, x + start).all()
    assert torch.allclose(start.flatten(1).abs().sum(1), torch.full((40,), 30.0), rtol=1e-4)
    runs = [APGD(threat, steps=20, restarts=1, eps_scales=(3, 2, 1), sparsity="l0", seed=s)(
        standard_model, x, y) for s in (0, 0, 1)]
    assert torch.equal(runs[0].x_adv, runs[1].x_adv)
    assert not torch.equal(runs[0].x_adv, runs[2].x_adv)
    for r in runs:
        assert threat.contains(x, r.x_adv).all()
        with torch.no_grad():
            assert torch.equal(r.success, standard_model(r.x_adv).argmax(1) != y)
        assert r.success.float().mean() > 0.5  # a CompactCNN of one epoch is not l_1 robust
