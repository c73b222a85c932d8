"""viz: figures are produced headless, and the numbers behind them show what they claim."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from advlab import L1, L2, Linf
from advlab.masking import masked_model
from advlab.viz import (
    first_conv,
    first_layer_activations,
    loss_surface,
    plot_activation_histograms,
    plot_first_layer_filters,
    plot_loss_surface,
)


def test_filters_figure(standard_model):
    other = masked_model(standard_model, levels=2)  # same filters behind a threshold
    fig = plot_first_layer_filters({"standard": standard_model, "thresholded": other},
                                   max_filters=8)
    assert isinstance(fig, Figure)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 16  # 2 models x 8 filters
    shown = images[0].images[0].get_array()
    assert shown.shape == (5, 5)
    assert torch.allclose(torch.as_tensor(shown.data), first_conv(standard_model).weight[0, 0])


def test_activation_histograms_report_zeros(standard_model, mnist_test):
    x = mnist_test[0][:50]
    binary = masked_model(standard_model, levels=2)
    acts = first_layer_activations(standard_model, x)
    assert acts.shape == (50, 32, 28, 28) and acts.min() >= 0
    fig = plot_activation_histograms({"standard": standard_model, "binarised": binary}, x)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    zeros = 100 * (acts == 0).float().mean().item()
    assert labels[0] == f"standard ({zeros:.0f}% zeros)"
    assert labels[1].startswith("binarised")


def test_loss_surface_rises_along_gradient_on_standard_model(standard_model, mnist_test):
    x, y = mnist_test
    s = loss_surface(standard_model, x[0], y[0], Linf(0.3), n=9,
                     generator=torch.Generator().manual_seed(0))
    assert s["loss"].shape == (9, 9)
    along_grad, along_random = s["loss"][:, 0], s["loss"][0, :]
    assert torch.allclose(along_grad[0], along_random[0])  # both start at x
    assert along_grad[-1] > along_grad[0] + 1.0  # the gradient direction finds higher loss
    assert along_grad[-1] > along_random[-1]  # ... than random noise of the same size
    assert s["gradient_norm"] > 0


def test_loss_surface_is_flat_along_the_masked_gradient(standard_model, mnist_test):
    x, y = mnist_test
    masked = masked_model(standard_model)
    s = loss_surface(masked, x[0], y[0], L2(2.0), n=7, generator=torch.Generator().manual_seed(0))
    assert s["gradient_norm"] == 0  # shattered gradient: no direction at all
    assert torch.allclose(s["loss"][:, 0], s["loss"][0, 0].expand(7))  # flat along it
    assert (s["loss"][0, :] - s["loss"][0, 0]).abs().max() > 0  # the random direction moves


def test_plot_loss_surface_figure(standard_model, mnist_test):
    x, y = mnist_test
    fig = plot_loss_surface(standard_model, x[:1], y[:1], L1(10.0), n=5)
    assert isinstance(fig, Figure)
    ax2 = fig.axes[1]
    assert len(ax2.get_lines()) == 2
    assert {t.get_text() for t in ax2.get_legend().get_texts()} == {"gradient direction",
                                                                   "random direction"}
