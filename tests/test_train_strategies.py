"""Training strategies on tiny data: shapes, budgets, and what each strategy picks."""

from __future__ import annotations

import pytest
import torch

from advlab.attacks import PGD
from advlab.models import CompactCNN
from advlab.threats import L1, L2, Linf
from advlab.train import AttackSpec, Strategy, msd_attack
from advlab.train.engine import init_model

LINF = AttackSpec("linf", steps=2)
L1S = AttackSpec("l1", steps=2, step_size=2.5)
L2S = AttackSpec("l2", steps=2)


@pytest.fixture(scope="module")
def tiny(mnist_test):
    x, y = mnist_test
    return init_model("compact-cnn", 0).eval(), x[:32], y[:32]


def test_standard_returns_the_clean_batch(tiny):
    model, x, y = tiny
    b = Strategy("standard", [])(model, x, y)
    assert b.x is x and b.y is y and b.robust == {}


def test_single_pgd_stays_in_the_ball_and_reports_robust_accuracy(tiny):
    model, x, y = tiny
    g = torch.Generator().manual_seed(0)
    b = Strategy("single", [LINF])(model, x, y, generator=g)
    assert b.x.shape == x.shape
    assert Linf(0.3).contains(x, b.x).all()
    correct, total = b.robust["linf"]
    assert total == 32 and 0 <= int(correct) <= 32


def test_eps_warmup_scales_the_budget(tiny):
    model, x, y = tiny
    b = Strategy("single", [LINF])(model, x, y, scale=0.1, generator=torch.Generator())
    assert (b.x - x).abs().amax() <= 0.03 + 1e-6


def test_fgsm_rs_and_random_rt_build():
    atk = AttackSpec("linf", "fgsm-rs", step_size=0.375).build(0.5)
    assert atk.steps == 1 and abs(atk.step_size - 0.1875) < 1e-9
    assert AttackSpec("rt", "random", k=3).build().k == 3
    with pytest.raises(ValueError):
        AttackSpec("rt", "pgd")
    with pytest.raises(ValueError):
        AttackSpec("linf", "random")


def test_avg_concatenates_every_attack(tiny):
    model, x, y = tiny
    b = Strategy("avg", [LINF, L2S])(model, x, y, generator=torch.Generator())
    assert b.x.shape == (64, *x.shape[1:]) and torch.equal(b.y, y.repeat(2))
    assert Linf(0.3).contains(x, b.x[:32]).all() and L2(2.0).contains(x, b.x[32:]).all()


def test_max_picks_the_highest_loss_attack(tiny):
    model, x, y = tiny
    b = Strategy("max", [LINF, L1S, L2S])(model, x, y, generator=torch.Generator())
    assert b.x.shape == x.shape
    in_some = Linf(0.3).contains(x, b.x) | L1(10.0).contains(x, b.x) | L2(2.0).contains(x, b.x)
    assert in_some.all()
    # worst-case robust accuracy is at most each attack's robust accuracy
    worst = int(b.robust["worst"][0])
    assert all(worst <= int(b.robust[k][0]) for k in ("linf", "l1", "l2"))


def test_max_equals_the_per_example_argmax_of_losses(tiny):
    model, x, y = tiny
    specs = [LINF, L2S]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    b = Strategy("max", specs)(model, x, y, generator=g1)
    res = [s.build()(model, x, y, generator=g2) for s in specs]
    scores = torch.stack([r.loss.masked_fill(r.success, float("inf")) for r in res])
    pick = scores.argmax(0)
    expect = torch.where(pick.view(-1, 1, 1, 1) == 0, res[0].x_adv, res[1].x_adv)
    assert torch.equal(b.x, expect)


def test_msd_stays_in_the_union_and_beats_the_clean_loss(tiny):
    model, x, y = tiny
    ths = [Linf(0.3), L1(10.0), L2(2.0)]
    res = msd_attack(model, x, y, ths, steps=5, step_sizes=[0.06, 2.0, 0.4])
    in_some = ths[0].contains(x, res.x_adv) | ths[1].contains(x, res.x_adv)
    assert (in_some | ths[2].contains(x, res.x_adv)).all()
    clean_err = (model(x).argmax(1) != y).float().mean()
    assert res.success.float().mean() >= clean_err
    b = Strategy("msd", [LINF, L1S, L2S], msd_steps=3)(model, x, y)
    assert b.x.shape == x.shape and "msd" in b.robust


def test_msd_refuses_rt():
    with pytest.raises(ValueError, match="l_p threats only"):
        Strategy("msd", [LINF, AttackSpec("rt", "random")])


def test_eat_picks_one_threat_per_batch_and_favours_the_weakest(tiny):
    model, x, y = tiny
    s = Strategy("eat", [LINF, L2S])
    s.running = {"linf": 0.9, "l2": 0.1}
    p = s.eat_probs()
    assert p[1] > p[0] and abs(float(p.sum()) - 1) < 1e-6
    b = s(model, x, y, generator=torch.Generator(), choice_generator=torch.Generator())
    assert len(b.robust) == 1 and b.x.shape == x.shape
    s.update_running({"linf": (0, 10)})
    assert s.running["linf"] < 0.9
    state = s.state_dict()
    s2 = Strategy("eat", [LINF, L2S])
    s2.load_state_dict(state)
    assert s2.running == s.running


def test_strategy_validation():
    with pytest.raises(ValueError, match="unknown strategy"):
        Strategy("mean", [LINF, L2S])
    with pytest.raises(ValueError, match="exactly one"):
        Strategy("single", [LINF, L2S])
    with pytest.raises(ValueError, match="at least two"):
        Strategy("max", [LINF])


def test_strategies_leave_the_model_in_train_mode_and_params_trainable():
    model = CompactCNN().train()
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    Strategy("max", [LINF, L2S])(model, x, y, generator=torch.Generator())
    assert model.training and all(p.requires_grad for p in model.parameters())


def test_init_model_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = init_model("compact-cnn", 1), init_model("compact-cnn", 1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = init_model("compact-cnn", 2)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_pgd_attack_objects_are_what_specs_build():
    atk = AttackSpec("l2", steps=7, step_size=0.5).build()
    assert isinstance(atk, PGD) and atk.steps == 7 and atk.threat == L2(2.0)
