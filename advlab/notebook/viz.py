"""Seeing gradient masking: first-layer filters, their activations, and the loss surface.

Tramer & Boneh (2019) found that l_inf adversarial training on MNIST learns first-layer filters
that threshold the input: most first-layer units output exactly zero unless a pixel is bright,
so small l_1 or l_2 changes to dark pixels have no effect on the output and no gradient. These
functions put a model next to a standard one to show it:

- ``plot_first_layer_filters(models)``: the first convolution's kernels, one row per model;
- ``plot_activation_histograms(models, x)``: histograms of the first layer's outputs (after its
  ReLU), with the fraction of exact zeros in the legend;
- ``plot_loss_surface(model, x, y, threat)``: the loss along the gradient direction and along a
  random direction (a 2-D surface and both 1-D slices). A smooth surface that rises along the
  gradient is healthy; a flat or jagged one along the gradient while a random direction rises is
  masking.

Every function returns a ``matplotlib.figure.Figure`` and never calls ``show`` (works headless);
the numbers behind the plots come from ``first_conv``, ``first_layer_activations`` and
``loss_surface``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.base import frozen
from ..threats import ThreatModel

__all__ = [
    "first_conv",
    "first_layer_activations",
    "loss_surface",
    "plot_first_layer_filters",
    "plot_activation_histograms",
    "plot_loss_surface",
]


def _figure(**kw):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(**kw)


def _as_dict(models) -> dict[str, nn.Module]:
    if isinstance(models, nn.Module):
        return {"model": models}
    if not isinstance(models, Mapping) or not models:
        raise TypeError("pass a model or a dict {name: model}")
    return dict(models)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` (in module order)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("the model has no nn.Conv2d layer")


def first_layer_activations(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """relu(first convolution's output) on x (B, C, H, W) in [0, 1]: (B, K, H', W').

    Everything before the convolution (normalisation, a quantiser) runs as in the model.
    """
    conv, out = first_conv(model), {}

    def hook(_m, _inp, o):
        out["a"] = o.detach()

    handle = conv.register_forward_hook(hook)
    try:
        with frozen(model), torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return F.relu(out["a"])


def _random_direction(threat: ThreatModel, x: torch.Tensor, gen) -> torch.Tensor:
    """The threat's random noise of size eps (``threat.noise``, as diagnose's noise check draws
    it) scaled to threat norm 1: l_1 noise spreads over as many pixels as eps does."""
    eps = float(threat.eps)
    return threat.noise(x, eps, gen) / eps if eps > 0 else threat.noise(x, 1.0, gen)


def loss_surface(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    n: int = 21,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Cross-entropy loss of one example on the plane spanned by the gradient and random directions.

    x (1, C, H, W) or (C, H, W) in [0, 1], y a label. Both directions have the threat's norm 1;
    the grid runs from 0 to eps along each (``n`` points), and every point is clipped to [0, 1].
    Returns {"alphas": (n,), "betas": (n,), "loss": (n, n) indexed [gradient, random],
    "gradient_norm": the l_2 norm of the input gradient at x (0 under shattered gradients)}.
    """
    x = x.reshape(1, *x.shape[-3:]).detach()
    y = torch.as_tensor(y, device=x.device).reshape(1).long()
    eps = float(threat.eps)
    with frozen(model):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xg), y), xg)
        # the threat's steepest ascent (k=1: a sparse threat's single largest coordinate)
        d_grad, d_rand = threat.direction(g, k=1), _random_direction(threat, x, generator)
        ts = torch.linspace(0, eps, n, device=x.device, dtype=x.dtype)
        a, b = torch.meshgrid(ts, ts, indexing="ij")
        pts = (x + a.reshape(-1, 1, 1, 1) * d_grad + b.reshape(-1, 1, 1, 1) * d_rand).clamp(0, 1)
        with torch.no_grad():
            losses = torch.cat([
                F.cross_entropy(model(c), y.expand(c.shape[0]), reduction="none")
                for c in pts.split(256)
            ])
    return {"alphas": ts.cpu(), "betas": ts.cpu(), "loss": losses.view(n, n).cpu(),
            "gradient_norm": g.norm().cpu()}


def plot_first_layer_filters(models, max_filters: int = 32):
    """One row per model of its first-layer kernels (input channel 0), each on its own colour
    scale centred at 0 (red positive, blue negative). ``models``: a model or {name: model}."""
    models = _as_dict(models)
    kernels = {k: first_conv(m).weight.detach()[:max_filters, 0].cpu() for k, m in models.items()}
    cols = max(w.shape[0] for w in kernels.values())
    fig = _figure(figsize=(0.5 * cols + 1.5, 0.75 * len(models) + 0.6), layout="constrained")
    axes = fig.subplots(len(models), cols, squeeze=False)
    for r, (name, w) in enumerate(kernels.items()):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < w.shape[0]:
                v = w[c].abs().max().item() or 1.0
                ax.imshow(w[c].numpy(), cmap="RdBu_r", vmin=-v, vmax=v)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.suptitle("first-layer filters")
    return fig


def plot_activation_histograms(models, x: torch.Tensor, bins: int = 50):
    """Histograms (log counts) of the first layer's post-ReLU outputs on images x, per model.

    The legend gives the fraction of exact zeros: a thresholding first layer (l_inf training)
    outputs zero almost everywhere, which is what hides the gradient from l_1 and l_2 attacks.
    """
    models = _as_dict(models)
    fig = _figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    acts = {k: first_layer_activations(m, x).flatten().cpu() for k, m in models.items()}
    top = max(a.max().item() for a in acts.values()) or 1.0
    for name, a in acts.items():
        zeros = (a == 0).float().mean().item()
        ax.hist(a.numpy(), bins=bins, range=(0, top), histtype="step", linewidth=1.5,
                label=f"{name} ({100 * zeros:.0f}% zeros)")
    ax.set_yscale("log")
    ax.set_xlabel("first-layer activation (after ReLU)")
    ax.set_ylabel("count")
    ax.legend()
    ax.set_title("first-layer activations")
    return fig


def plot_loss_surface(model, x, y, threat: ThreatModel, n: int = 21, generator=None):
    """The loss of one example over [0, eps] along the gradient and a random direction.

    Left: the 2-D surface as a heat map; right: the two 1-D slices. Returns the figure; the
    data is ``loss_surface(...)``.
    """
    s = loss_surface(model, x, y, threat, n, generator)
    fig = _figure(figsize=(9, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    eps = float(threat.eps)
    im = ax1.imshow(s["loss"].T.numpy(), origin="lower", extent=(0, eps, 0, eps), aspect="auto",
                    cmap="viridis")
    fig.colorbar(im, ax=ax1, label="cross-entropy")
    ax1.set_xlabel("along the gradient")
    ax1.set_ylabel("along a random direction")
    ax2.plot(s["alphas"].numpy(), s["loss"][:, 0].numpy(), label="gradient direction")
    ax2.plot(s["betas"].numpy(), s["loss"][0, :].numpy(), label="random direction")
    ax2.set_xlabel(f"step size ({threat.name} norm)")
    ax2.set_ylabel("cross-entropy")
    ax2.legend()
    fig.suptitle(f"loss surface ({threat.name}, |grad|_2 = {s['gradient_norm'].item():.2g})")
    return fig
