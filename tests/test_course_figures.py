"""advlab.course_figures: the threshold curve, the accuracy bars and the l_1/l_inf hull radius."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlab.course_figures import (
    TRAMER_BONEH_CIFAR10,
    active_fraction,
    hull_l2_radius,
    plot_accuracy_bars,
    plot_threshold_curves,
)


def _threshold_net(threshold: float) -> nn.Module:
    """A first layer whose 4 units see the mean of a 5 x 5 patch minus ``threshold``."""
    conv = nn.Conv2d(1, 4, 5, padding=2)
    with torch.no_grad():
        conv.weight.fill_(1 / 25)
        conv.bias.fill_(-threshold)
    return nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))


def test_active_fraction_sees_a_threshold():
    net = _threshold_net(0.4)
    net(torch.zeros(1, 1, 28, 28))  # materialise the lazy layer
    net.train()
    r = active_fraction(net, torch.tensor([0.0, 0.2, 0.39, 0.41, 0.8, 1.0]))
    assert r["active"].tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert torch.allclose(r["mean"], (r["levels"] - 0.4).clamp_min(0), atol=1e-5)
    assert net.training  # mode restored


def test_active_fraction_of_a_linear_first_layer_has_no_step():
    net = _threshold_net(0.0)
    net(torch.zeros(1, 1, 28, 28))
    r = active_fraction(net, 11)
    assert r["levels"].shape == (11,)
    assert r["active"][0] == 0 and bool((r["active"][1:] == 1).all())


def test_hull_radius_limits():
    assert hull_l2_radius(1.0, 1.0, 2) == pytest.approx(1.0)  # B_1 inside B_inf: radius 1
    assert hull_l2_radius(0.3, 0.0, 784) == pytest.approx(0.3)  # B_inf(eps): radius eps
    assert hull_l2_radius(0.0, 10.0, 784) == pytest.approx(10 / 28)  # B_1(eps): eps / sqrt(d)
    with pytest.raises(ValueError):
        hull_l2_radius(0.3, 10, 0)


def test_hull_radius_is_the_support_minimum():
    eps_inf, eps_1, d = 0.3, 10.0, 784
    r = hull_l2_radius(eps_inf, eps_1, d)

    def support(u):
        return max(eps_inf * u.abs().sum().item(), eps_1 * u.abs().max().item())

    gen = torch.Generator().manual_seed(0)
    for _ in range(200):  # random directions never go below the radius
        u = torch.randn(d, generator=gen, dtype=torch.float64)
        assert support(u / u.norm()) >= r - 1e-9
    # and a flat direction on about eps_1 / eps_inf coordinates nearly reaches it
    k = round(eps_1 / eps_inf)
    u = torch.zeros(d, dtype=torch.float64)
    u[:k] = 1 / math.sqrt(k)
    assert support(u) == pytest.approx(r, rel=0.02)
    assert 1.7 < r < 1.8  # MNIST: the hull misses part of the l_2 ball of radius 2


def test_accuracy_bars_draw_measured_and_published_rows():
    rows = {"ours": {"clean": 99.0, "linf": 90.0, "l1": 20.0},
            "paper": {"clean": 92.0, "linf": 71.0, "l1": None}}
    fig = plot_accuracy_bars(rows, {"clean": "clean", "linf": "l_inf", "l1": "l_1"},
                             published=["paper"], title="t")
    ax = fig.axes[0]
    bars = [p for p in ax.patches]
    assert len(bars) == 5  # the None is not drawn
    assert any(t.get_text() == "n/r" for t in ax.texts)
    assert sum(1 for b in bars if b.get_hatch() == "//") == 2
    with pytest.raises(ValueError):
        plot_accuracy_bars({})


def test_threshold_curve_figure():
    nets = {"threshold 0.6": _threshold_net(0.6), "linear": _threshold_net(0.0)}
    fig = plot_threshold_curves(nets, levels=5)
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    ys = ax.lines[0].get_ydata().tolist()
    assert ys == [0.0, 0.0, 0.0, 1.0, 1.0]  # levels 0, .25, .5, .75, 1


def test_cited_cifar10_row_is_complete():
    v = TRAMER_BONEH_CIFAR10["values"]
    assert set(v) == {"clean", "linf", "l1", "l2", "rt"}
    assert v["linf"] > v["l1"]
    assert "1904.13000" in TRAMER_BONEH_CIFAR10["source"]
