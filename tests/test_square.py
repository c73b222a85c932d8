"""Square Attack: gradient-free, in the threat model and the box, deterministic, and strong."""

from __future__ import annotations

import pytest
import torch

from advlab import L1, L2, Linf, evaluate_union
from advlab.attacks import PGD, Square, square_attack
from advlab.attacks.square import window_side
from advlab.masking import masked_model


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[:60], y[:60]


def test_window_schedule_shrinks():
    sides = [window_side(i, 1000, 0.8, 28, 28) for i in range(1000)]
    assert sides[0] == 25 and sides[-1] >= 1
    assert all(a >= b for a, b in zip(sides, sides[1:], strict=False))
    assert sides[-1] < 5


@pytest.mark.parametrize("threat", [Linf(0.3), L2(2.0), L1(10.0)], ids=["linf", "l2", "l1"])
def test_outputs_in_threat_and_box(standard_model, batch, threat):
    x, y = batch
    res = Square(threat, queries=40)(standard_model, x, y)
    assert res.x_adv.shape == x.shape and res.x_adv.dtype == x.dtype
    assert bool(threat.contains(x, res.x_adv).all())
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    with torch.no_grad():
        wrong = standard_model(res.x_adv).argmax(1) != y
    assert torch.equal(wrong, res.success)  # success is what the model really does at x_adv


def test_deterministic_with_generator_and_seed(standard_model, batch):
    x, y = batch
    x, y = x[:20], y[:20]
    a = square_attack(standard_model, x, y, L2(1.0), queries=30,
                      generator=torch.Generator().manual_seed(3))
    b = square_attack(standard_model, x, y, L2(1.0), queries=30,
                      generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.x_adv, b.x_adv)
    assert torch.equal(Square(L1(5.0), 30)(standard_model, x, y).x_adv,
                       Square(L1(5.0), 30)(standard_model, x, y).x_adv)


def test_does_not_touch_gradients_or_global_rng(standard_model, batch):
    x, y = batch
    standard_model.train()
    try:
        state = torch.random.get_rng_state()
        Square(Linf(0.1), queries=10)(standard_model, x[:10], y[:10])
        assert torch.equal(state, torch.random.get_rng_state())
        assert standard_model.training  # mode restored
    finally:
        standard_model.eval()
    assert all(p.requires_grad for p in standard_model.parameters())


def test_linf_square_breaks_standard_model(standard_model, batch):
    x, y = batch
    res = Square(Linf(0.3), queries=200)(standard_model, x, y)
    assert res.success.float().mean() >= 0.9  # a standard model is not robust at eps = 0.3


def test_l2_and_l1_square_find_adversarial_examples(standard_model, batch):
    x, y = batch[0][:40], batch[1][:40]
    with torch.no_grad():
        clean = (standard_model(x).argmax(1) == y).float().mean().item()
    for threat in (L2(2.0), L1(10.0)):
        res = Square(threat, queries=300)(standard_model, x, y)
        acc = 1 - res.success.float().mean().item()
        assert acc < clean - 0.15, threat  # well below the clean accuracy


def test_square_beats_pgd_on_masked_model_inside_evaluator(standard_model, batch):
    x, y = batch
    masked = masked_model(standard_model)
    pgd_only = evaluate_union(masked, (x, y), {"linf": PGD(Linf(0.3), steps=10)}, progress=False)
    both = evaluate_union(masked, (x, y), {"linf": [PGD(Linf(0.3), steps=10),
                                                    Square(Linf(0.3), queries=200)]},
                          progress=False)
    assert pgd_only.accuracy("linf") >= 0.8  # PGD is fooled by the zero gradients
    assert both.accuracy("linf") <= pgd_only.accuracy("linf") - 0.5


def test_rejects_other_threats(standard_model, batch):
    from advlab import RotationTranslation

    with pytest.raises(TypeError):
        square_attack(standard_model, *batch, RotationTranslation())


def test_trusted_preset_includes_gradient_free_and_l1_apgd():
    from advlab import presets
    from advlab.attacks import APGD

    trusted = presets.trusted_attacks("mnist")
    assert trusted.keys() == presets.attacks("mnist", "strong").keys()
    for name in ("linf", "l2", "l1"):
        assert any(isinstance(a, Square) and a.threat == trusted[name][0].threat
                   for a in trusted[name]), name
        assert any(isinstance(a, APGD) for a in trusted[name]), name
    assert any(isinstance(a, APGD) and a.threat.name == "l1" for a in trusted["l1"])
    assert not any(isinstance(a, (Square, APGD)) for s in presets.attacks("mnist", "fast").values()
                   for a in s)  # the fast preset stays cheap for tests
    assert trusted_queries(presets.trusted_attacks("cifar10", queries=5000)) == {5000}
    squares = {name: [a.queries for a in stack if isinstance(a, Square)]
               for name, stack in trusted.items() if name != "rt"}
    # l_1: AutoAttack's budget; l_inf and l_2 end with Square again at it
    assert squares == {"linf": [1000, 5000], "l2": [1000, 5000], "l1": [5000]}


def test_lite_preset_is_a_smaller_strong_one():
    """Notebooks measure live with "lite": APGD, PGD and Square with fewer steps and queries,
    none of "strong"'s targeted attacks (APGD-T and FAB-T cost 9 and 3 times as much per
    surviving example)."""
    from advlab import presets
    from advlab.attacks import APGD

    lite, strong = presets.attacks("mnist", "lite"), presets.attacks("mnist", "strong")
    assert lite.keys() == strong.keys()
    for name in ("linf", "l2", "l1"):
        assert [type(a).__name__ for a in lite[name]] == ["APGD", "PGD", "Square"]
        assert {"APGD", "APGDT", "Square"} <= {type(a).__name__ for a in strong[name]}
        assert any(isinstance(a, APGD) for a in lite[name])
        assert 0 < trusted_queries({name: lite[name]}).pop() < trusted_queries(
            {name: strong[name]}).pop()


def trusted_queries(stacks):
    return {a.queries for s in stacks.values() for a in s if isinstance(a, Square)}
