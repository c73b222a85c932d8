"""advlab.course_figures: the threshold curve, the accuracy charts, the l_1/l_inf hull radius and
the cited numbers (each with its source; unverified ones marked)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from advlab.course_figures import (
    CITATIONS,
    NOT_CHECKED,
    SEED_SLIDE_CIFAR10,
    TRAMER_BONEH_CIFAR10,
    Citation,
    active_fraction,
    hull_l2_radius,
    plot_accuracy_bars,
    plot_threat_panels,
    plot_threshold_curves,
    published_citation,
    zoo_vs_published,
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


def _visible_text_boxes(fig):
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(r)) for ax in fig.axes for t in ax.texts
            if t.get_visible() and t.get_text()]


def _assert_readable(fig):
    """No two visible value labels overlap, and the legend covers no axes."""
    boxes = _visible_text_boxes(fig)
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            assert not ba.overlaps(bb), f"labels {a!r} and {b!r} overlap"
    r = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends, "no legend"
    for legend in legends:
        lb = legend.get_window_extent(r)
        for ax in fig.axes:
            assert not lb.overlaps(ax.get_window_extent(r)), "the legend sits on a panel"


def test_accuracy_bars_keep_legend_and_labels_apart():
    cols = {k: k for k in ("clean", "linf", "l1", "l2", "union")}
    for n_rows, expect_hidden in ((12, True), (4, False)):
        rows = {f"model {i}": {"clean": 99.0 - i, "linf": 60.0 + i, "l1": 20.0, "l2": 50.0,
                               "union": 30.0} for i in range(n_rows)}
        fig = plot_accuracy_bars(rows, cols, published=["model 1", "model 3"])
        _assert_readable(fig)
        hidden = [t for t in fig.axes[0].texts if not t.get_visible()]
        # 12 bars per group (notebook 3's old chart): the labels do not fit, so none is shown;
        # 4 bars per group: every label fits and is shown
        assert bool(hidden) == expect_hidden, (n_rows, len(hidden))


def test_threat_panels_draw_each_value_once_and_readably():
    cols = {"clean": "clean", "linf": "l_inf", "l1": "l_1", "union_lp": "union"}
    ours = {"a": {"clean": 99.0, "linf": 88.3, "l1": 7.3, "union_lp": 7.1},
            "b": {"clean": 97.5, "linf": 74.2, "l1": 21.3, "union_lp": None}}
    published = {"a": ("paper A", {"clean": 99.1, "linf": 90.3, "l1": 4.2, "union_lp": 3.7})}
    fig = plot_threat_panels(ours, cols, published, title="t", ours_label="ours",
                             published_label="published")
    assert len(fig.axes) == len(cols)
    bars = {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}
    for name, vals in ours.items():
        for key, v in vals.items():
            if v is None:
                assert f"ours:{name}:{key}" not in bars
            else:
                assert bars[f"ours:{name}:{key}"].get_width() == pytest.approx(v)
    assert bars["published:a:linf"].get_width() == pytest.approx(90.3)
    assert bars["published:a:linf"].get_hatch()
    assert not any(g.startswith("published:b") for g in bars)  # b has no published row
    assert any(t.get_text() == "n/r" for t in fig.axes[3].texts)
    _assert_readable(fig)
    with pytest.raises(ValueError, match="not in 'ours'"):
        plot_threat_panels(ours, cols, {"c": ("x", {})})
    with pytest.raises(ValueError):
        plot_threat_panels({}, cols)


def test_zoo_vs_published_uses_the_stored_trusted_rows():
    from advlab.zoo.table import PUBLISHED, best_model, stored_result

    names = ["mnist-linf", best_model("union_lp"), "mnist-linf"]
    ours, published, notes = zoo_vs_published(names, ["clean", "linf", "union_lp"])
    assert list(ours) == list(dict.fromkeys(names))
    for name, vals in ours.items():
        row = stored_result(name)
        assert row["n"] == 1000 and row["strength"] == "strong"
        for key, v in vals.items():
            assert v == pytest.approx(100 * row[key])
    assert published["mnist-linf"][1]["linf"] == PUBLISHED["mnist-linf"].values["linf"]
    assert notes and all(NOT_CHECKED.upper() in n for n in notes)  # Maini et al.: not checked


def test_every_citation_has_a_source_and_unverified_ones_say_so():
    cites = list(CITATIONS.values()) + [published_citation("mnist-linf")]
    assert published_citation("mnist-standard") is None
    for c in cites:
        assert isinstance(c, Citation) and len(c.source) > 20
        assert c.values and all(v is None or 0 <= v <= 100 for v in c.values.values())
        if c.verified:
            assert NOT_CHECKED not in c.note.lower() and "checked: " in c.note
        else:
            assert NOT_CHECKED in c.display_label and NOT_CHECKED.upper() in c.note
            assert c.caveat, "an unverified citation says why"


def test_cifar10_rows_the_notebooks_can_cite():
    v = TRAMER_BONEH_CIFAR10["values"]
    assert set(v) == {"clean", "linf", "l1", "l2", "rt"}
    assert "1904.13000" in TRAMER_BONEH_CIFAR10["source"]
    assert not TRAMER_BONEH_CIFAR10["checked"]  # nobody could find it in the paper
    assert NOT_CHECKED in TRAMER_BONEH_CIFAR10["label"]
    assert SEED_SLIDE_CIFAR10["values"] == {"clean": 96.0, "linf": 70.0}
    assert SEED_SLIDE_CIFAR10["checked"] and "slide" in SEED_SLIDE_CIFAR10["source"]
