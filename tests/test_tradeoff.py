"""The trade-off distribution: exact formulas against a simulation that attacks real samples."""

import math

import numpy as np
import pytest
import torch

from advlab.tradeoff import TradeoffDistribution, phi

N = 40_000
TOL = 0.012  # about 5 standard deviations of a proportion estimated from 40,000 samples


@pytest.mark.parametrize(
    "p0, alpha, d, r, eps_inf, eps_1",
    [
        (0.9, 2.0, 100, 0.0, None, None),       # weak features only
        (0.9, 2.0, 100, 2.0, None, None),       # near the union optimum
        (0.8, 1.5, 50, 0.3, None, None),
        (0.95, 3.0, 64, 5.0, 0.1, 1.0),         # other budgets; l_1 spends its budget on x_0
        (0.7, 1.0, 25, 0.1, 0.05, 3.0),         # l_1 spends its budget on a weak feature
        (0.9, 2.0, 100, np.inf, 0.1, 0.5),      # x_0 only, budgets below 1: it survives
    ],
)
def test_formula_matches_simulation(p0, alpha, d, r, eps_inf, eps_1):
    dist = TradeoffDistribution(p0, alpha, d)
    exact = dist.accuracies(r, eps_inf, eps_1)
    gen = torch.Generator().manual_seed(1234)
    sim = dist.simulate(r, n=N, eps_inf=eps_inf, eps_1=eps_1, generator=gen)
    for name in ("clean", "linf", "l1", "union"):
        assert abs(exact[name] - sim[name]) < TOL, (name, exact[name], sim[name])


def test_a_wrong_drop_would_be_caught():
    # the same comparison fails when the l_1 attack is credited with the l_1 norm of the weights
    dist = TradeoffDistribution(0.9, 2.0, 100)
    a, b = 2.0, 1.0
    wrong = dist.p0 * phi(dist.alpha - (2 * (a + b * 10) - a) / b)
    sim = dist.simulate(2.0, n=N, generator=torch.Generator().manual_seed(0))
    assert abs(float(wrong) - sim["l1"]) > 0.1


def test_x0_only_classifier_by_hand():
    dist = TradeoffDistribution(0.85, 2.0, 400)
    acc = dist.accuracies(np.inf)  # paper budgets: eps_inf = 2 eta < 1, eps_1 = 2
    assert acc["clean"] == pytest.approx(0.85)
    assert acc["linf"] == pytest.approx(0.85)
    assert acc["l1"] == 0.0 and acc["union"] == 0.0


def test_weak_features_only_by_hand():
    dist = TradeoffDistribution(0.9, 2.0, 400)
    acc = dist.accuracies(0.0)
    phi_ = 0.5 * (1 + math.erf(2.0 / math.sqrt(2)))
    assert acc["clean"] == pytest.approx(phi_)
    # l_inf at 2 eta moves S from N(alpha, 1) to N(-alpha, 1)
    assert acc["linf"] == pytest.approx(1 - phi_)
    # l_1 at 2 spends everything on one weak feature of weight b / sqrt(d): S drops by 2 / 20
    assert acc["l1"] == pytest.approx(0.5 * (1 + math.erf((2.0 - 0.1) / math.sqrt(2))))


def test_union_below_each_threat_and_monotone_in_eps():
    dist = TradeoffDistribution(0.9, 2.0, 400)
    f = dist.frontier()
    assert np.all(f["union"] <= np.minimum(f["linf"], f["l1"]) + 1e-12)
    assert np.all(f["linf"] <= f["clean"] + 1e-12)
    small = dist.frontier(eps_inf=0.5 * dist.eta, eps_1=1.0)
    assert np.all(small["union"] >= f["union"] - 1e-12)


def test_accuracies_keep_the_shape_of_r():
    dist = TradeoffDistribution()
    r = np.array([[0.0, 1.0], [2.0, np.inf]])
    acc = dist.accuracies(r)
    assert acc["union"].shape == (2, 2)
    assert isinstance(dist.accuracies(1.0)["clean"], float)


def test_best_accuracies_match_the_design_note():
    # p0 = 0.9, alpha = 2 (shared/notes/tradeoff-distribution.md): each threat alone can be
    # defended well, their union cannot; the best union tends to p0 / 2 as d grows.
    best = TradeoffDistribution(0.9, 2.0, 400).best()
    assert best["linf"][0] == pytest.approx(0.9, abs=1e-6)
    assert best["l1"][0] == pytest.approx(0.974, abs=1e-3)
    assert best["union"][0] == pytest.approx(0.3709, abs=1e-3)
    assert best["union"][1] == pytest.approx(2.22, abs=0.01)
    assert TradeoffDistribution(0.9, 2.0, 10**4).best()["union"][0] == pytest.approx(
        0.435, abs=1e-3)
    assert TradeoffDistribution(0.9, 2.0, 10**6).best()["union"][0] < 0.45


def test_sample_statistics():
    dist = TradeoffDistribution(0.8, 2.0, 16)
    x, y = dist.sample(50_000, torch.Generator().manual_seed(3))
    assert x.shape == (50_000, 17) and set(y.unique().tolist()) == {-1.0, 1.0}
    assert abs((x[:, 0] == y).double().mean().item() - 0.8) < 0.01
    assert abs((x[:, 1:] * y[:, None]).mean().item() - dist.eta) < 0.01


@pytest.mark.parametrize("kw", [{"p0": 0.5}, {"p0": 1.2}, {"alpha": 0.0}, {"d": 0}])
def test_rejects_bad_parameters(kw):
    with pytest.raises(ValueError):
        TradeoffDistribution(**kw)


def test_explorer_redraws_marker_and_text_when_r_moves():
    pytest.importorskip("ipywidgets")
    from advlab.widgets import TradeoffExplorer

    explorer = TradeoffExplorer(p0=0.9, alpha=2.0, d=400)
    png, caption = explorer.image.value, explorer.caption.value
    assert caption.startswith("at r = 2:")
    explorer.log_r.value = -1.0  # r = 0.1: lean on the weak features
    assert explorer.image.value != png, "the picture did not redraw"
    assert explorer.caption.value.startswith("at r = 0.1:")
    exact = TradeoffDistribution(0.9, 2.0, 400).accuracies(0.1)
    assert explorer.last["r"] == pytest.approx(0.1)
    assert explorer.last["l1"] == pytest.approx(exact["l1"])
    assert f"l_1 {100 * exact['l1']:.1f}%" in explorer.caption.value


def test_tradeoff_figure_marks_the_chosen_r_on_every_curve():
    from matplotlib.figure import Figure

    from advlab.widgets import tradeoff_figure

    dist = TradeoffDistribution(0.9, 2.0, 400)
    f, r = dist.frontier(), 0.5
    here = dist.accuracies(r)
    best = dist.best()
    fig = tradeoff_figure(Figure(layout="constrained"), f, r, here,
                          (best["union"][1], dist.accuracies(best["union"][1])), title="t")
    left, right = fig.axes[:2]
    assert left.get_title().startswith("at r = 0.5:")
    dots = [ln for ln in left.lines if len(ln.get_xdata()) == 1 and ln.get_marker() == "o"]
    assert sorted(float(ln.get_ydata()[0]) for ln in dots) == pytest.approx(
        sorted(here[k] for k in ("clean", "linf", "l1", "union")))
    assert all(float(ln.get_xdata()[0]) == pytest.approx(r) for ln in dots)
    marker = [ln for ln in right.lines if ln.get_label() == "r = 0.5"][0]
    assert (marker.get_xdata()[0], marker.get_ydata()[0]) == pytest.approx(
        (here["linf"], here["l1"]))
