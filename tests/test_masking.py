"""The deliberately masked model fools PGD; BPDA and the gradient-free attack see through it."""

from __future__ import annotations

import pytest
import torch

from advlab import L2, Linf, evaluate_union
from advlab.attacks import APGD, PGD, Square
from advlab.masking import BPDA, Quantize, bpda, has_masking_layers, masked_model


@pytest.fixture(scope="module")
def masked(standard_model):
    return masked_model(standard_model, levels=16)


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[:100], y[:100]


def test_quantize_forward_and_gradients():
    x = torch.rand(4, 1, 5, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    q = Quantize(4)(x)
    assert set(torch.unique(q.detach() * 3).round().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert (q.detach() - x.detach()).abs().max() <= 1 / 6 + 1e-6
    (g,) = torch.autograd.grad(q.sum(), x)
    assert torch.count_nonzero(g) == 0  # shattered: no gradient at all
    q2 = Quantize(4, straight_through=True)(x)
    assert torch.equal(q2.detach(), q.detach())  # same forward pass
    (g2,) = torch.autograd.grad(q2.sum(), x)
    assert torch.equal(g2, torch.ones_like(x))  # straight-through gradient
    with pytest.raises(ValueError):
        Quantize(1)


def test_masked_model_keeps_clean_accuracy_and_bpda_same_function(standard_model, masked, batch):
    x, y = batch
    with torch.no_grad():
        acc = (standard_model(x).argmax(1) == y).float().mean()
        acc_m = (masked(x).argmax(1) == y).float().mean()
        assert acc_m >= acc - 0.05
        straight = bpda(masked)
        assert torch.equal(straight(x), masked(x))
    assert has_masking_layers(masked) and not has_masking_layers(standard_model)
    assert masked[0].straight_through is False  # bpda copies, never switches the original
    with pytest.raises(ValueError):
        bpda(standard_model)


def test_input_gradients_are_zero(masked, batch):
    x, y = batch
    xg = x.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(masked(xg), y)
    (g,) = torch.autograd.grad(loss, xg)
    assert torch.count_nonzero(g) == 0


@pytest.mark.parametrize("threat", [Linf(0.3), L2(2.0)], ids=["linf", "l2"])
def test_pgd_overclaims_bpda_breaks_it(masked, batch, threat):
    x, y = batch
    pgd_only = evaluate_union(masked, (x, y), {"t": PGD(threat, steps=10)}, progress=False)
    with_bpda = evaluate_union(masked, (x, y), {"t": [PGD(threat, steps=10),
                                                      BPDA(APGD(threat, steps=10))]},
                               progress=False)
    assert pgd_only.accuracy("t") >= 0.8  # the "robust" accuracy PGD reports
    assert with_bpda.accuracy("t") <= pgd_only.accuracy("t") - 0.35  # it was not robust


def test_square_breaks_masked_model_linf(masked, batch):
    x, y = batch
    res = Square(Linf(0.3), queries=200)(masked, x, y)
    with torch.no_grad():
        acc = (masked(res.x_adv).argmax(1) == y).float().mean().item()
    assert acc <= 0.2
