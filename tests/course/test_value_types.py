"""Returned values are checked for what they are before they are compared.

A complex tensor (even one whose real part is the right answer), an integer or boolean tensor,
a sparse or meta tensor, NaN or inf: each is a "wrong type" (or non-finite) failure worth zero,
in the shared verdicts and in every judge of ex1-ex6.
"""

from __future__ import annotations

import pytest
import torch

from advlab.course import codec, get_exercise
from advlab.course.graders.common import attack_close
from advlab.course.spec import Outcome, close_verdict, number_verdict, score_case

NAN = float("nan")


def _wrong_types(like: torch.Tensor) -> dict[str, torch.Tensor]:
    real = like.detach().double()
    return {
        "complex full of NaN": torch.full(like.shape, complex(NAN, NAN), dtype=torch.complex64),
        "complex, right real part, NaN imaginary": torch.complex(real, torch.full_like(real, NAN)),
        "complex, right real part": real.to(torch.complex128),
        "integer": like.round().long(),
        "boolean": like > 0.5,
        "sparse": like.float().to_sparse(),
        "meta": torch.empty(like.shape, device="meta"),
    }


@pytest.mark.parametrize("kind", sorted(_wrong_types(torch.zeros(1))))
def test_close_verdict_refuses_a_wrong_type_with_a_clear_message(kind):
    expected = torch.rand(4, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    got = _wrong_types(expected)[kind]
    v = close_verdict(got, expected)
    assert not v.passed
    assert v.got.startswith("wrong type"), v
    assert close_verdict(expected.clone(), expected).passed  # the right answer still passes


def test_non_finite_and_wrong_shape_fail():
    e = torch.rand(3, 4)
    for got in (e + NAN, e.masked_fill(e > 0.5, float("inf")), e[:2], e.t()):
        assert not close_verdict(got, e).passed


def test_the_attack_judge_is_not_rescued_by_its_tolerance():
    # attack_close accepts a few off pixels; a complex/NaN batch must not slip through there
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    judge = attack_close(x, x.clone(), max_frac=0.5)
    for bad in _wrong_types(x).values():
        assert not judge([Outcome("ok", bad)]).passed
    assert judge([Outcome("ok", x.clone())]).passed


def test_numbers_must_be_real_and_finite():
    for bad in (complex(1, 0), torch.tensor(1 + 0j), torch.tensor([True]), True, NAN,
                float("inf"), torch.tensor(NAN), "1.0", None):
        v = number_verdict(bad, 1.0, 10.0)
        assert not v.passed, bad
    assert number_verdict(torch.tensor([1.0]), 1.0, 1e-6).passed
    assert number_verdict(1, 1.0, 1e-6).passed


def test_the_encoder_names_what_cannot_be_compared():
    assert "meta" in codec.encode_output(torch.empty(2, device="meta"))["__unserializable__"]
    assert "sparse" in codec.encode_output(torch.eye(2).to_sparse())["__unserializable__"]
    c = codec.encode_output(torch.ones(2, dtype=torch.complex64))
    assert c.dtype == torch.complex64  # kept as it is, so that the judge can refuse it


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (list, tuple)):
        for v in obj:
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


def _hostile_values(case) -> list:
    """Values a determined student returns to fool a judge that converts before it checks."""
    like = _first_tensor(case.calls[0].args) if case.calls else None
    values: list = [complex(NAN, NAN), torch.tensor(complex(NAN, 0.0)), NAN]
    if like is not None:
        for t in _wrong_types(like).values():
            values += [t, (t, t), [t] * 3]
        values += [like.double() + NAN, (like + NAN, like.long())]
    return values


@pytest.mark.parametrize("name", ["ex1", "ex2", "ex3", "ex4", "ex5", "ex6"])
def test_no_judge_accepts_a_complex_nan_or_wrongly_typed_answer(name):
    for q in get_exercise(name).questions:
        for case in q.cases():
            for value in _hostile_values(case):
                outs = [Outcome("ok", value) for _ in case.calls]
                res = score_case(case, outs, q.func)
                assert not res.passed and res.points == 0, (q.qid, case.name, type(value))
