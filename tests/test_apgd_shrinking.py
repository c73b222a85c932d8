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


@pytest.mark.parametrize("attack", [apgd, apgd_targeted], ids=["apgd", "apgdt"])
def test_success_only_counts_at_eps(attack):
    """The boundary lies at l_1 distance 2.5: inside the 3 x eps and 2 x eps balls of eps = 1.5,
    outside eps. The large stages reach it; the result must not claim it, and must lie in eps."""
    x = torch.full((3, 1, 8, 8), 0.2)
    y = torch.zeros(3, dtype=torch.long)
    model = TwoClassLinear(x, 2.5)
    kw = {"targets": 1} if attack is apgd_targeted else {}
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
    untargeted, targeted = stack[-2:]
    assert isinstance(untargeted, APGD) and untargeted.eps_scales == (3, 2, 1)
    assert untargeted.restarts == 5
    assert isinstance(targeted, APGDT) and targeted.targets == 5
    assert describe_attack(untargeted) == "APGD 100 steps x 5 restarts at 3-2-1 x eps"
    assert describe_attack(targeted) == "APGDT 5 targets x 100 steps at 3-2-1 x eps"
    for name in ("linf", "l2"):  # only l_1's stack has them
        assert all(getattr(a, "eps_scales", (1.0,)) == (1.0,)
                   for a in trusted_attacks("mnist", include=[name])[name])
