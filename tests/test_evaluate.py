"""The union evaluator's bookkeeping, its refusals, and the presets."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch.utils.data import TensorDataset

from advlab import presets
from advlab.attacks import PGD, AttackResult, grid_attack
from advlab.evaluate import accuracy, evaluate_union
from advlab.threats import L1, L2, Linf, RotationTranslation

RT = RotationTranslation(max_rot=15.0, max_trans=1.0, n_rot=3, n_trans=3)


def _attacks():
    """Deterministic attacks (no random start), so running them again gives the same points."""
    return {
        "linf": PGD(Linf(0.08), steps=4, random_start=False),
        "l2": [PGD(L2(0.8), steps=3, random_start=False),
               PGD(L2(1.2), steps=3, random_start=False, loss="margin")],
        "rt": partial(grid_attack, threat=RT),
    }


@pytest.fixture(scope="module")
def data(mnist_test):
    x, y = mnist_test
    x, y = x[100:124].clone(), y[100:124].clone()
    y[:2] = (y[:2] + 1) % 10  # two examples the model gets wrong without any attack
    return x, y


@pytest.fixture(scope="module")
def result(standard_model, data):
    return evaluate_union(standard_model, data, _attacks(), batch_size=100, progress=False)


def _alone(model, x, y, stack, clean):
    """Run one threat's attacks alone on the clean-correct examples: robust = survives all."""
    robust = clean.clone()
    idx = clean.nonzero().flatten()
    for attack in stack if isinstance(stack, list) else [stack]:
        res = attack(model, x[idx], y[idx])
        with torch.no_grad():
            robust[idx[model(res.x_adv).argmax(1) != y[idx]]] = False
    return robust


def test_union_bookkeeping(standard_model, data, result):
    x, y = data
    with torch.no_grad():
        clean = standard_model(x).argmax(1) == y
    assert torch.equal(result.clean, clean)
    assert not clean[:2].any()
    # each threat's accuracy equals running its attack stack alone
    for name, stack in _attacks().items():
        alone = _alone(standard_model, x, y, stack, clean)
        assert torch.equal(result.robust[name], alone), name
    # the union: robust to every threat; never above any single threat or clean accuracy
    expected = clean.clone()
    for v in result.robust.values():
        expected &= v
    assert torch.equal(result.union, expected)
    assert result.union_accuracy <= min(result.accuracy(n) for n in result.robust) + 1e-12
    assert result.union_accuracy <= result.clean_accuracy
    for name in result.robust:
        assert not (result.robust[name] & ~result.clean).any()
    # the case this test is about: some but not all examples survive
    assert 0 < result.union.sum() < clean.sum()
    d = result.as_dict()
    assert list(d) == ["clean", "linf", "l2", "rt", "union"]
    assert d["union"] == pytest.approx(result.union.float().mean().item())
    assert "union" in result.table() and f"n = {x.shape[0]}" in str(result)


def test_each_attack_is_credited_with_the_examples_it_broke_first(standard_model, data, result):
    x, y = data
    for name, stack in _attacks().items():
        stack = stack if isinstance(stack, list) else [stack]
        by = result.broken_by[name]
        # broken somewhere in the stack <=> clean-correct and not robust
        assert torch.equal(by >= 0, result.clean & ~result.robust[name]), name
        assert by.max() < len(stack) and sum(result.breaks(name)) == int((by >= 0).sum())
    # l_2's second attack gets only what the first one left standing
    first = _alone(standard_model, x, y, _attacks()["l2"][0], result.clean)
    assert torch.equal(result.broken_by["l2"] == 0, result.clean & ~first)
    assert torch.equal(result.broken_by["l2"] == 1, first & ~result.robust["l2"])


def test_each_attack_is_timed_and_one_with_nothing_to_attack_took_no_time(standard_model,
                                                                          data, result):
    for name, stack in _attacks().items():
        secs = result.attack_seconds[name]
        assert len(secs) == (len(stack) if isinstance(stack, list) else 1), name
        assert all(s > 0 for s in secs), (name, secs)  # each ran on some standing example
    # a second attack after one that breaks every example gets no example, so no time
    x, y = data
    stacks = {"l2": [PGD(L2(20.0), steps=10, random_start=False),
                     PGD(L2(2.0), steps=3, random_start=False)]}
    res = evaluate_union(standard_model, (x, y), stacks, progress=False)
    assert res.accuracy("l2") == 0.0
    assert res.attack_seconds["l2"][0] > 0 and res.attack_seconds["l2"][1] == 0.0


def test_worst_case_inputs_are_real(standard_model, data, result):
    x, y = data
    assert result.worst_x.shape == x.shape
    with torch.no_grad():
        pred = standard_model(result.worst_x).argmax(1)
    broken = result.clean & ~result.union
    assert broken.any()
    assert (pred[broken] != y[broken]).all()  # real adversarial inputs
    assert (pred[result.union] == y[result.union]).all()
    assert torch.equal(result.worst_x[~result.clean], x[~result.clean])
    assert [result.worst_threat[i] for i in range(2)] == ["clean", "clean"]
    threats = {"linf": Linf(0.08), "l2": L2(1.2)}
    for i in broken.nonzero().flatten().tolist():
        name = result.worst_threat[i]
        assert name in ("linf", "l2", "rt")
        assert not result.robust[name][i]
        if name in threats:  # the worst input lies in the threat that produced it
            assert threats[name].contains(x[i:i + 1], result.worst_x[i:i + 1]).all()


def test_per_threat_false_gives_the_same_union(standard_model, data, result):
    fast = evaluate_union(standard_model, data, _attacks(), per_threat=False, progress=False)
    assert torch.equal(fast.union, result.union)
    assert torch.equal(fast.robust["linf"], result.robust["linf"])
    assert math.isnan(fast.accuracy("l2")) and math.isnan(fast.accuracy("rt"))
    assert fast.union_accuracy == result.union_accuracy
    assert "--" in fast.table()
    # worst-case inputs are still real adversarial inputs
    with torch.no_grad():
        pred = standard_model(fast.worst_x).argmax(1)
    broken = fast.clean & ~fast.union
    assert (pred[broken] != data[1][broken]).all()


def test_data_forms_and_batches_agree(standard_model, data, result):
    x, y = data[0][:10], data[1][:10]
    attacks = {k: v for k, v in _attacks().items() if k != "l2"}
    small = evaluate_union(standard_model, (x, y), attacks, batch_size=5, progress=False)
    ds = evaluate_union(standard_model, TensorDataset(x, y), attacks, batch_size=5,
                        progress=False, keep_worst=False)
    batches = [(x[i:i + 5], y[i:i + 5]) for i in range(0, len(y), 5)]
    it = evaluate_union(standard_model, batches, attacks, progress=False)
    for other in (small, ds, it):
        assert torch.equal(other.clean, result.clean[:10])
        # per-example attacks: the batch split may only change results by rounding
        for name in attacks:
            assert (other.robust[name] != result.robust[name][:10]).sum() <= 1
    assert torch.equal(small.union, ds.union) and torch.equal(small.union, it.union)
    assert ds.worst_x is None
    assert len(small.worst_threat) == len(y)


def test_evaluator_rechecks_claims(standard_model, data):
    x, y = data

    def overclaims(model, xs, ys):  # says "fooled" but returns the clean input
        return AttackResult(xs.clone(), torch.ones(len(ys), dtype=torch.bool), torch.zeros(len(ys)))

    def plain_tensor(model, xs, ys):  # a bare tensor is accepted too
        return xs.clone()

    res = evaluate_union(standard_model, data, {"a": overclaims, "b": plain_tensor},
                         progress=False)
    assert torch.equal(res.union, res.clean)
    assert res.worst_threat.count("") == int(res.clean.sum())


class Broken:
    """An attack with a declared threat that returns points outside it."""

    def __init__(self, threat, push):
        self.threat, self.push = threat, push

    def __call__(self, model, x, y):
        x_adv = self.push(x)
        return AttackResult(x_adv, torch.zeros(len(y), dtype=torch.bool), torch.zeros(len(y)))


@pytest.mark.parametrize(
    "attack",
    [
        Broken(Linf(0.1), lambda x: (x + 0.2).clamp(0, 1)),  # outside the l_inf ball
        Broken(L1(1.0), lambda x: (x + 0.01).clamp(0, 1)),  # l_1 of ~7.8 > 1
        Broken(None, lambda x: x + 0.5),  # outside [0, 1]
        Broken(Linf(0.3), lambda x: x[:, :, :-1]),  # wrong shape
    ],
    ids=["linf", "l1", "box", "shape"],
)
def test_broken_attacks_are_refused(standard_model, data, attack):
    with pytest.raises(RuntimeError):
        evaluate_union(standard_model, data, {"bad": attack}, progress=False)


def test_evaluator_input_checks_and_model_state(standard_model, data):
    x, y = data
    with pytest.raises(ValueError):
        evaluate_union(standard_model, data, {}, progress=False)
    with pytest.raises(ValueError):
        evaluate_union(standard_model, (x, y[:-1]), {"linf": _attacks()["linf"]}, progress=False)
    standard_model.train()
    try:
        evaluate_union(standard_model, (x[:4], y[:4]), {"linf": _attacks()["linf"]},
                       progress=False)
        assert standard_model.training
        assert all(p.requires_grad for p in standard_model.parameters())
    finally:
        standard_model.eval()
    acc = accuracy(standard_model, data)
    assert acc == pytest.approx((standard_model(x).argmax(1) == y).float().mean().item())


# -------------------------------------------------------------------------------------- presets


def test_presets_match_the_paper():
    t = presets.threats("mnist")
    assert t["linf"] == Linf(0.3) and t["l1"] == L1(10.0) and t["l2"] == L2(2.0)
    assert (t["rt"].max_rot, t["rt"].max_trans) == (30.0, 3.0)
    c = presets.threats("CIFAR10")
    assert "l2" not in c and c["linf"].eps == pytest.approx(4 / 255)
    assert c["l1"].eps == pytest.approx(2000 / 255)
    fast = presets.attacks("mnist", "fast")
    assert set(fast) == {"linf", "l1", "l2", "rt"}
    assert fast["linf"][0].threat == Linf(0.3) and fast["l1"][0].steps == 50
    strong = presets.attacks("mnist", "strong", include=["linf", "l1"])
    assert list(strong) == ["linf", "l1"]
    kinds = [type(a).__name__ for a in strong["linf"]]
    # APGD-CE and APGD-DLR, targeted APGD, targeted FAB, the gradient-free Square Attack,
    # then targeted FAB at the classes ranked 4th to 9th (AutoAttack's FAB-T aims at all 9),
    # then Square again at AutoAttack's 5000 queries, with another seed
    assert kinds == ["APGD", "APGD", "APGDT", "FABT", "Square", "FABT", "Square"], kinds
    assert [a.loss for a in strong["linf"][:2]] == ["ce", "dlr"]
    assert strong["linf"][2].targets == 9 and strong["linf"][3].targets == 3
    assert (strong["linf"][5].skip, strong["linf"][5].targets) == (3, 9)
    squares = [a for a in strong["linf"] if type(a).__name__ == "Square"]
    assert [(a.queries, a.seed) for a in squares] == [(1000, 0), (5000, 1)]
    one = presets.trusted_attacks("mnist", include=["linf"], queries=300)["linf"]
    assert [a.queries for a in one if type(a).__name__ == "Square"] == [300]  # not twice
    # l_1: l1-APGD (CE), targeted, SLIDE PGD with restarts, Square, the boundary attack, then
    # AutoAttack's l_1 version: l1-APGD and targeted l1-APGD with a shrinking budget, with
    # advlab's sparsity, then with AutoAttack's
    assert [type(a).__name__ for a in strong["l1"]] == ["APGD", "APGDT", "PGD", "Square",
                                                        "BoundaryL1", "APGD", "APGDT", "APGD",
                                                        "APGDT"]
    assert [a.sparsity for a in strong["l1"][5:]] == ["mass", "mass", "l0", "l0"]
    assert strong["l1"][2].restarts == 3
    l2 = presets.attacks("mnist", "strong", include=["l2"])["l2"]  # l_2 ends with FAB-T again
    assert [type(a).__name__ for a in l2] == kinds[:-1] + ["FABT", "Square"]
    assert l2[-2].random_start and l2[-1].queries == 5000
    for bad in (lambda: presets.attacks("mnist", "ultra"),
                lambda: presets.attacks("mnist", include=["l7"]),
                lambda: presets.threats("imagenet")):
        with pytest.raises(ValueError):
            bad()


def test_preset_attacks_run_in_the_evaluator(standard_model, data):
    x, y = data[0][2:6], data[1][2:6]
    attacks = presets.attacks("mnist", "fast", include=["linf", "rt"])
    res = evaluate_union(standard_model, (x, y), attacks, progress=False)
    assert res.accuracy("linf") <= 0.2 and res.union_accuracy <= res.accuracy("rt")


def test_preset_attacks_scale_every_budget():
    from advlab import presets

    half = presets.attacks("mnist", "lite", scale=0.5)
    full = presets.attacks("mnist", "lite")
    for name in ("linf", "l1", "l2"):
        for a, b in zip(half[name], full[name], strict=True):
            assert a.threat.eps == pytest.approx(0.5 * b.threat.eps), name
    rt = half["rt"][0].keywords["threat"]
    assert (rt.max_rot, rt.max_trans) == (15.0, 1.5)
    with pytest.raises(ValueError, match="scale must be > 0"):
        presets.attacks("mnist", "fast", scale=0.0)
