"""Per-example outcomes packed for the zoo's stored results: exact round trips, clear refusals."""

from __future__ import annotations

import pytest
import torch

from advlab import L2, Linf
from advlab.attacks import PGD
from advlab.evaluate import evaluate_union
from advlab.zoo import outcomes


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000])
def test_bits_round_trip(n):
    mask = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.5
    text = outcomes.pack_bits(mask)
    assert torch.equal(outcomes.unpack_bits(text, n), mask)
    assert len(text) == 4 * -(-((n + 7) // 8) // 3)  # base64 of ceil(n / 8) bytes


def test_bit_order_is_documented():
    mask = torch.zeros(9, dtype=torch.bool)
    mask[0] = mask[8] = True
    mask[3] = True
    assert outcomes.pack_bits(mask) == "CQE="  # bytes 0b00001001, 0b00000001
    assert len(outcomes.pack_bits(torch.ones(1000, dtype=torch.bool))) == 168


def test_refuses_damaged_records():
    text = outcomes.pack_bits(torch.ones(9, dtype=torch.bool))
    with pytest.raises(ValueError, match="not the 20 images"):
        outcomes.unpack_bits(text, 20)
    with pytest.raises(ValueError, match="padding bits"):  # 16 bits set, read as 9 images
        outcomes.unpack_bits(outcomes.pack_bits(torch.ones(16, dtype=torch.bool)), 9)
    with pytest.raises(ValueError, match="not base64"):
        outcomes.unpack_bits("#!?", 3)
    with pytest.raises(ValueError, match="same images"):
        outcomes.pack({"clean": torch.ones(3, dtype=torch.bool),
                       "linf": torch.ones(4, dtype=torch.bool)})
    with pytest.raises(ValueError, match="bool"):
        outcomes.pack_bits(torch.ones(3))
    with pytest.raises(ValueError, match="not an outcomes record"):
        outcomes.unpack({"clean": 0.9})


@pytest.fixture(scope="module")
def zoo_standard():
    """The zoo's standard model: real, and shipped (nothing to train)."""
    import advlab.zoo

    return advlab.zoo.load("mnist-standard")


@pytest.fixture(scope="module")
def union_result(zoo_standard, mnist_test):
    x, y = mnist_test[0][:64], mnist_test[1][:64]
    attacks = {"linf": PGD(Linf(0.1), steps=3), "l2": PGD(L2(1.0), steps=3)}
    return evaluate_union(zoo_standard, (x, y), attacks, progress=False)


def test_table_rederived_from_the_record(union_result):
    res = union_result
    record = outcomes.pack(outcomes.from_union(res))
    survive = outcomes.unpack(record)
    assert record["n"] == 64 and set(survive) == {"clean", "linf", "l2"}
    acc = outcomes.accuracies(survive)
    for name, value in res.as_dict().items():
        key = "union_all" if name == "union" else name
        assert acc[key] == pytest.approx(value)
    assert acc["union_lp"] == pytest.approx(res.union_accuracy)  # only l_p threats here
    assert 0 < acc["linf"] < acc["clean"]  # the check is not vacuous


def test_concat_of_shards_equals_the_whole(union_result):
    whole = outcomes.from_union(union_result)
    halves = [outcomes.pack({k: v[:40] for k, v in whole.items()}),
              outcomes.pack({k: v[40:] for k, v in whole.items()})]
    assert outcomes.concat(halves) == outcomes.pack(whole)


def test_differences_image_by_image():
    a = {"l2": torch.tensor([True, True, False, False])}
    b = {"l2": torch.tensor([True, False, True, False]), "linf": torch.ones(4, dtype=torch.bool)}
    d = outcomes.differences(a, b)
    assert d == {"l2": {"only_a_breaks": [2], "only_b_breaks": [1]}}


def test_from_union_needs_every_threat_measured(zoo_standard, mnist_test):
    x, y = mnist_test[0][:16], mnist_test[1][:16]
    attacks = {"linf": PGD(Linf(0.1), steps=1), "l2": PGD(L2(1.0), steps=1)}
    res = evaluate_union(zoo_standard, (x, y), attacks, per_threat=False, progress=False)
    with pytest.raises(ValueError, match="per_threat=True"):
        outcomes.from_union(res)
