"""Attack searches in bfloat16 (``advlab.device.LowPrecision``, ``evaluate_union(search_dtype=)``):
the logits stay float32, the search is as strong on a real model, and only the model's own
precision decides what counts as broken."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import advlab.zoo as zoo
from advlab.attacks import PGD, Square
from advlab.device import LowPrecision, parse_search_dtype
from advlab.evaluate import evaluate_union
from advlab.models import PreActResNet18
from advlab.presets import threats


@pytest.fixture(scope="module")
def robust_model():
    return zoo.load("mnist-eat-apgd-l1ft").eval()


def test_search_dtype_names_and_refusals():
    assert parse_search_dtype("bfloat16") is torch.bfloat16
    assert parse_search_dtype("float32") is None and parse_search_dtype(torch.float32) is None
    with pytest.raises(ValueError, match="not one of.*bfloat16"):
        parse_search_dtype("bf15")
    with pytest.raises(ValueError, match="float64"):
        parse_search_dtype(torch.float64)


def test_low_precision_needs_a_separable_last_layer(robust_model):
    with pytest.raises(ValueError, match="nn.Sequential ending in nn.Linear"):
        LowPrecision(PreActResNet18(10))
    with pytest.raises(ValueError, match="ending in nn.Linear"):
        LowPrecision(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10),
                                         torch.nn.ReLU()))
    with pytest.raises(ValueError, match="bfloat16 or torch.float16"):
        LowPrecision(robust_model, torch.float32)


def test_logits_are_float32_and_close_gradients_agree(robust_model, mnist_test):
    x, y = mnist_test[0][:64].clone().requires_grad_(True), mnist_test[1][:64]
    fast = LowPrecision(robust_model)
    z32, z16 = robust_model(x), fast(x)
    assert z16.dtype == torch.float32
    # the last layer ran in float32: bfloat16 logits would all be bfloat16-representable
    assert (z16.detach().bfloat16().float() != z16.detach()).float().mean() > 0.5
    assert 0 < (z32 - z16).abs().max() < 0.25  # the body ran in bfloat16, close to float32
    g32, = torch.autograd.grad(F.cross_entropy(z32, y), x)
    g16, = torch.autograd.grad(F.cross_entropy(z16, y), x)
    assert F.cosine_similarity(g32.flatten(), g16.flatten(), dim=0) > 0.98


def test_bfloat16_search_is_as_strong_and_checked_in_float32(robust_model, mnist_test):
    x, y = mnist_test[0][:100], mnist_test[1][:100]
    ball = threats("mnist")["l2"]
    stack = {"l2": [PGD(ball, steps=20), Square(ball, queries=200)]}
    robust_model.train()  # the caller's mode comes back
    ours = evaluate_union(robust_model, (x, y), stack, progress=False)
    fast = evaluate_union(robust_model, (x, y), stack, progress=False, search_dtype="bfloat16")
    assert robust_model.training
    assert all(p.requires_grad for p in robust_model.parameters())
    robust_model.eval()
    assert abs(int(ours.robust["l2"].sum()) - int(fast.robust["l2"].sum())) <= 3
    broken = ~fast.robust["l2"] & fast.clean
    assert broken.sum() > 10
    with torch.no_grad():  # each counted break is one in float32, inside the ball and the box
        wrong = robust_model(fast.worst_x[broken]).argmax(1) != y[broken]
    assert wrong.all()
    assert ball.contains(x[broken], fast.worst_x[broken]).all()
    with pytest.raises(ValueError, match="not one of"):
        evaluate_union(robust_model, (x, y), stack, progress=False, search_dtype="half")


def test_eval_cli_searches_in_bfloat16_and_says_so(tmp_path, capsys):
    import json

    from advlab.cli import main
    from advlab.cli.eval import SEARCH_DTYPE_NAMES
    from advlab.device import SEARCH_DTYPES

    assert SEARCH_DTYPE_NAMES == tuple(SEARCH_DTYPES)
    got = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp_path / f"{dtype}.json"
        assert main(["eval", "--zoo", "mnist-linf", "--n", "40", "--threats", "linf",
                     "--strength", "fast", "--search-dtype", dtype, "--json", str(out),
                     "--no-progress"]) == 0
        text = capsys.readouterr().out
        assert ("searching in bfloat16" in text) == (dtype == "bfloat16")
        got[dtype] = json.loads(out.read_text())
        assert got[dtype]["search_dtype"] == dtype
    a, b = (got[d]["models"][0]["accuracy"]["linf"] for d in ("float32", "bfloat16"))
    assert a > 0.5 and abs(a - b) <= 2 / 40


def test_near_misses_are_attacked_again_in_float32(standard_model, mnist_test):
    """An image a lower-precision search leaves within NEAR_MISS of the boundary gets the same
    attack again in float32; the others do not."""
    import copy

    from advlab.evaluation.union import NEAR_MISS

    x, y = mnist_test[0][:64], mnist_test[1][:64]
    pgd = PGD(threats("mnist")["linf"], steps=10)
    calls = []

    def only_in_float32(model, xs, ys):  # finds nothing when it searches in bfloat16
        calls.append((isinstance(model, LowPrecision), len(ys)))
        return xs.clone() if isinstance(model, LowPrecision) else pgd(model, xs, ys).x_adv

    flat = copy.deepcopy(standard_model)  # every margin within NEAR_MISS: logits / 1000
    with torch.no_grad():
        flat[-1].weight.div_(1000)
        flat[-1].bias.div_(1000)
    res = evaluate_union(flat, (x, y), {"linf": [only_in_float32]}, progress=False,
                         search_dtype="bfloat16")
    n = int(res.clean.sum())
    assert calls == [(True, n), (False, n)]
    ref = evaluate_union(flat, (x, y), {"linf": [pgd]}, progress=False)
    assert torch.equal(res.robust["linf"], ref.robust["linf"]) and (~ref.robust["linf"]).any()
    calls.clear()
    evaluate_union(standard_model, (x, y), {"linf": [only_in_float32]}, progress=False,
                   search_dtype="bfloat16")
    with torch.no_grad():
        z = standard_model(x[res.clean])
    top2 = z.topk(2, dim=1).values
    near = int(((top2[:, 0] - top2[:, 1]) <= NEAR_MISS).sum())
    assert calls[0] == (True, n) and calls[1:] == ([(False, near)] if near else [])
    assert near < n // 4
