"""Small figures, numbers and cited results shared by the course notebooks 2, 5 and 7.

- ``active_fraction(model, levels)``: how many first-layer units fire on a uniform grey image,
  per grey level. An l_inf-trained MNIST model switches its units on only above a threshold
  (Tramèr & Boneh 2019, section 6); a standard model responds at every level.
- ``plot_threshold_curves(models)``: that curve, one line per model.
- ``plot_accuracy_bars(rows)``: grouped bars of accuracies per threat, ours next to published
  numbers (hatched); a missing value (None) is left out and marked "n/r" (not reported).
- ``hull_l2_radius(eps_inf, eps_1, d)``: the largest l_2 ball inside the convex hull of the
  l_inf and l_1 balls (the geometric argument behind E-AT, Croce & Hein 2022).
- ``TRAMER_BONEH_CIFAR10``: the l_inf-trained CIFAR10 model of Tramèr & Boneh (2019), as they
  report it, for the notebooks to cite beside our MNIST numbers.

Every function returns numbers or a ``matplotlib.figure.Figure`` and never calls ``show``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = [
    "TRAMER_BONEH_CIFAR10",
    "active_fraction",
    "plot_threshold_curves",
    "plot_accuracy_bars",
    "hull_l2_radius",
]

# Tramèr & Boneh (2019), arXiv:1904.13000, CIFAR10 table (eps l_inf 4/255, l_1 2000/255): the
# model adversarially trained against l_inf only. Accuracies in percent; l_2 and RT are not
# reported for this model in that table (None).
TRAMER_BONEH_CIFAR10 = {
    "label": "Adv_inf, CIFAR10 (Tramèr & Boneh 2019)",
    "source": "Tramèr & Boneh (2019), Adversarial Training and Robustness for Multiple "
              "Perturbations, NeurIPS, arXiv:1904.13000, CIFAR10 results table "
              "(l_inf 4/255, l_1 2000/255)",
    "values": {"clean": 92.0, "linf": 71.0, "l1": 16.4, "l2": None, "rt": None},
}


def _first_conv(model: nn.Module) -> nn.Conv2d:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise ValueError("the model has no nn.Conv2d layer")


def active_fraction(model: nn.Module, levels: Sequence[float] | torch.Tensor | int = 21,
                    shape: tuple[int, int, int] = (1, 28, 28)) -> dict[str, torch.Tensor]:
    """Fraction of first-layer units (after the ReLU) that are non-zero on uniform grey images.

    Feeds one image per grey level t (every pixel = t, ``shape`` (C, H, W)) through the model
    and reads the first convolution's output at the centre pixel, where the padding plays no
    role. Returns {"levels": (L,), "active": (L,) fractions in [0, 1], "mean": (L,) mean
    activation}. Runs without gradients and restores the model's mode.
    """
    if isinstance(levels, int):
        levels = torch.linspace(0, 1, levels)
    levels = torch.as_tensor(levels, dtype=torch.float32)
    conv = _first_conv(model)
    device = conv.weight.device
    imgs = levels.view(-1, 1, 1, 1).expand(-1, *shape).contiguous().to(device)
    seen = {}
    handle = conv.register_forward_hook(lambda _m, _i, o: seen.__setitem__("a", o.detach()))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(imgs)
    finally:
        handle.remove()
        model.train(was_training)
    a = torch.relu(seen["a"])
    centre = a[:, :, a.shape[2] // 2, a.shape[3] // 2].cpu()  # (L, K)
    return {"levels": levels, "active": (centre > 0).float().mean(1), "mean": centre.mean(1)}


def plot_threshold_curves(models, levels: int = 41):
    """One line per model: the fraction of active first-layer units against the grey level.

    ``models``: a model or {name: model}. A thresholding first layer shows a step: nothing
    fires on dark pixels, almost everything on bright ones.
    """
    from matplotlib.figure import Figure

    models = models if isinstance(models, Mapping) else {"model": models}
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, model in models.items():
        r = active_fraction(model, levels)
        ax.plot(r["levels"].numpy(), r["active"].numpy(), "o-", ms=3, label=name)
    ax.set_xlabel("grey level t of a uniform image (0 black, 1 white)")
    ax.set_ylabel("first-layer units active")
    ax.set_ylim(-0.03, 1.03)
    ax.legend()
    ax.set_title("when do the first-layer units switch on?")
    return fig


def plot_accuracy_bars(rows: Mapping[str, Mapping[str, float | None]],
                       columns: Mapping[str, str] | None = None, published: Sequence[str] = (),
                       title: str = "", ylabel: str = "accuracy (%)"):
    """Grouped bars: one group per column (threat), one bar per row (model), values in percent.

    rows: {model label: {column: percent or None}}. columns: {key: label} in display order
    (default: the keys of the first row). Rows named in ``published`` are hatched: they are
    cited, not measured. A None value draws no bar and writes "n/r" (not reported).
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("no rows to plot")
    if columns is None:
        columns = {k: k for k in next(iter(rows.values()))}
    n_rows = len(rows)
    width = 0.8 / n_rows
    fig = Figure(figsize=(1.6 * len(columns) + 2.5, 3.8), layout="constrained")
    ax = fig.subplots()
    for i, (name, vals) in enumerate(rows.items()):
        xs = [j + (i - (n_rows - 1) / 2) * width for j in range(len(columns))]
        hatch = "//" if name in published else None
        for x, key in zip(xs, columns, strict=True):
            v = vals.get(key)
            if v is None:
                ax.text(x, 1, "n/r", ha="center", va="bottom", fontsize=7, rotation=90)
                continue
            ax.bar(x, v, width, color=f"C{i}", hatch=hatch, edgecolor="white" if hatch else None,
                   label=name if key == next(k for k in columns if vals.get(k) is not None)
                   else None)
            ax.text(x, v + 1, f"{v:.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(columns)), list(columns.values()))
    ax.set_ylim(0, 112)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper right", ncols=1)
    if title:
        ax.set_title(title)
    return fig


def _min_l1_on_sphere(m: float, d: int) -> float:
    """The smallest l_1 norm of a unit-l_2 vector in R^d with every |u_i| <= m (m >= 1/sqrt d):
    as many entries as possible at m, the remaining l_2 mass in one more entry."""
    k = min(int(math.floor(1.0 / (m * m) + 1e-12)), d)
    rest = max(0.0, 1.0 - k * m * m)
    return k * m + math.sqrt(rest)


def hull_l2_radius(eps_inf: float, eps_1: float, d: int, grid: int = 20_000) -> float:
    """Radius of the largest l_2 ball (centred at 0) inside conv(B_inf(eps_inf) U B_1(eps_1)).

    A symmetric convex set contains the l_2 ball of radius r iff its support function is >= r
    in every unit direction u. The hull's support function is max(eps_inf ||u||_1,
    eps_1 ||u||_inf); for a given ||u||_inf = m the smallest ||u||_1 is reached by a flat vector
    (``_min_l1_on_sphere``), so the radius is a minimum over m in [1/sqrt d, 1], searched on a
    log grid refined at the flat vectors m = 1/sqrt k. The [0, 1] image box is ignored.
    """
    if d < 1 or eps_inf < 0 or eps_1 < 0:
        raise ValueError("need d >= 1 and non-negative budgets")
    lo = 1.0 / math.sqrt(d)
    ms = {lo, 1.0}
    ms.update(lo ** (1 - i / grid) for i in range(grid + 1))  # log-spaced from lo to 1
    ms.update(1.0 / math.sqrt(k) for k in range(1, d + 1))
    best = math.inf
    for m in ms:
        m = min(max(m, lo), 1.0)
        best = min(best, max(eps_1 * m, eps_inf * _min_l1_on_sphere(m, d)))
    return best
