"""The affine set of notebook 6: mixture <= one of two <= each type, by construction and stored.

Real MNIST, real zoo models, tiny sizes (a few images, few steps and queries).
"""

from __future__ import annotations

import pytest
import torch

from advlab import zoo
from advlab.affine_eval import PAIRS, WEIGHTS, _Checked, affine_row, check_row, mixture_attacks
from advlab.attacks import AttackResult
from advlab.presets import attacks, threats

TINY = {"steps": 2, "queries": 4, "n_rot": 2, "n_trans": 1}


def test_the_weights_include_the_pure_types():
    assert 0.0 in WEIGHTS and 1.0 in WEIGHTS and len(WEIGHTS) > 2


def test_every_stored_row_satisfies_the_chain():
    """Notebook 6's stored table: mixture <= one of two <= each single type <= clean."""
    from advlab.affine_stored import TABLE

    assert TABLE["rows"], "the stored affine table is empty"
    assert TABLE["weights"] == list(WEIGHTS)
    for row in TABLE["rows"]:
        a, b = PAIRS[row["pair"]]
        check_row(row, a, b)
        assert row["mixture"] <= row["one of two"] <= min(row[a], row[b]) <= row["clean"]
        assert row["n"] == TABLE["n"] and sum(row["fallen"].values()) == round(
            row["n"] * (row["one of two"] - row["mixture"]))


def test_check_row_refuses_a_mixture_above_the_union():
    row = {"clean": 0.9, "linf": 0.6, "l1": 0.5, "one of two": 0.4, "mixture": 0.45}
    with pytest.raises(AssertionError, match="mixture"):
        check_row(row, "linf", "l1")
    check_row({**row, "mixture": 0.3}, "linf", "l1")


@pytest.mark.parametrize("weight", [0.0, 1.0, -0.1, 1.5])
def test_mixture_attacks_need_an_interior_weight(weight):
    t = threats("mnist")
    with pytest.raises(ValueError, match="0 < weight < 1"):
        mixture_attacks(t["linf"], t["l1"], weight)


def test_affine_row_needs_the_pure_types():
    x, y = torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="include 0 and 1"):
        affine_row(zoo.load("mnist-linf"), (x, y), {}, "linf", "l1", weights=(0.25, 0.5))


def test_an_output_outside_the_affine_set_is_refused(mnist_test):
    x, y = mnist_test[0][:4], mnist_test[1][:4]
    t = threats("mnist")
    checked = mixture_attacks(t["linf"], t["l1"], 0.5, **TINY)[0]
    assert isinstance(checked, _Checked)

    def too_far(model, x, y):  # an l_inf part of 0.3, twice its scaled budget of 0.15
        da, db = torch.full_like(x, 0.3), torch.zeros_like(x)
        return AttackResult((x + da).clamp(0, 1), torch.ones(len(x), dtype=torch.bool),
                            torch.zeros(len(x)), (da, db))

    bad = _Checked(too_far, checked.threat, "too far")
    with pytest.raises(RuntimeError, match="outside the affine set"):
        bad(zoo.load("mnist-linf"), x, y)


@pytest.mark.parametrize("pair,model", [("linf+l1", "mnist-linf"), ("rt+linf", "mnist-rt")])
def test_affine_row_on_a_zoo_model(mnist_test, pair, model):
    """The chain holds per row, and every mixture attack's output lies in the affine set."""
    x, y = mnist_test[0][:6], mnist_test[1][:6]
    a, b = PAIRS[pair]
    row = affine_row(zoo.load(model), (x, y), attacks("mnist", "fast", include=[a, b]), a, b,
                     **TINY)
    check_row(row, a, b)
    assert row["n"] == 6 and set(row["fallen"]) == {w for w in WEIGHTS if 0 < w < 1}
    assert sum(row["fallen"].values()) == round(6 * (row["one of two"] - row["mixture"]))
    t = threats("mnist")
    for attack in mixture_attacks(t[a], t[b], 0.5, **TINY):  # run them, checked, on all six
        res = attack(zoo.load(model), x, y)
        assert res.x_adv.shape == x.shape and bool(((res.x_adv >= 0) & (res.x_adv <= 1)).all())
