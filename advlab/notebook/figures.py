"""Small figures, numbers and cited results shared by the course notebooks 2 to 7.

- ``active_fraction(model, levels)``: how many first-layer units fire on a uniform grey image,
  per grey level. An l_inf-trained MNIST model switches its units on only above a threshold
  (Tramèr & Boneh 2019, section 6); a standard model responds at every level.
- ``plot_threshold_curves(models)``: that curve, one line per model.
- ``plot_accuracy_bars(rows)``: grouped bars of accuracies per threat, ours next to published
  numbers (hatched); a missing value (None) is left out and marked "n/r" (not reported).
- ``plot_threat_panels(ours, published)``: one panel per threat, each model's bar beside its
  published counterpart's (hatched), legend outside the panels, value labels only where they fit.
- ``zoo_vs_published(names)``: the zoo's stored trusted rows (n = 1000) and the published rows
  they correspond to, in percent, ready for ``plot_threat_panels``.
- ``hull_l2_radius(eps_inf, eps_1, d)``: the largest l_2 ball inside the convex hull of the
  l_inf and l_1 balls (the geometric argument behind E-AT, Croce & Hein 2022).
- ``CITATIONS``: every number the notebooks cite from a paper or a slide, each with its source
  and where it was checked (``Citation.checked``; empty: not checked, and its label says so).
  ``TRAMER_BONEH_CIFAR10`` (not checked) and ``SEED_SLIDE_CIFAR10`` (the talk's slide) are two
  of them, as plain dicts for the charts. They are kept in ``advlab.zoo.published`` (the one
  home of every published number) and re-exported here.

Every function returns numbers or a ``matplotlib.figure.Figure`` and never calls ``show``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..zoo.published import CITATIONS, NOT_CHECKED, PUBLISHED, Citation

__all__ = [
    "CITATIONS",
    "Citation",
    "NOT_CHECKED",
    "SEED_SLIDE_CIFAR10",
    "TRAMER_BONEH_CIFAR10",
    "published_citation",
    "zoo_vs_published",
    "plot_threat_panels",
    "active_fraction",
    "plot_threshold_curves",
    "plot_accuracy_bars",
    "hull_l2_radius",
]

# The cited numbers (and the Citation record) live in advlab.zoo.published; these names stay
# importable from here, as the notebooks use them.
TRAMER_BONEH_CIFAR10 = CITATIONS["tramer_boneh_cifar10"].as_row()
SEED_SLIDE_CIFAR10 = CITATIONS["seed_slide_cifar10"].as_row()


def published_citation(name: str) -> Citation | None:
    """The published row of zoo model ``name`` (``advlab.zoo.published.PUBLISHED``, the
    counterpart its manifest entry names) as a Citation, or None when the model has no published
    counterpart. Maini et al.'s rows are not marked checked: their stated source shows a
    different table (``advlab.zoo.published.MAINI_CAVEAT``)."""
    return PUBLISHED.get(name)


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


def _fit_labels(fig, labels, slots=None) -> int:
    """Hide value labels that do not fit: outside their axes, wider than their slot, or over
    an earlier label.

    labels: matplotlib Text objects, in priority order. slots: optional {id(text): width in
    data units} (a vertical bar's width: its label may not be wider). Draws the figure once
    to measure. Returns how many were hidden.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out (constrained layout) and measures it, in pixels
    renderer = canvas.get_renderer()
    slots = slots or {}
    kept, hidden = [], 0
    for t in labels:
        box = t.get_window_extent(renderer).expanded(1.1, 1.1)
        inside = t.axes.get_window_extent(renderer)
        fits = (box.x0 >= inside.x0 - 1 and box.x1 <= inside.x1 + 1
                and box.y0 >= inside.y0 - 1 and box.y1 <= inside.y1 + 1)
        if id(t) in slots:
            x0 = t.axes.transData.transform((0, 0))[0]
            room = t.axes.transData.transform((slots[id(t)], 0))[0] - x0
            fits = fits and box.width <= room
        if fits and not any(box.overlaps(k) for k in kept):
            kept.append(box)
        else:
            t.set_visible(False)
            hidden += 1
    return hidden


def plot_accuracy_bars(rows: Mapping[str, Mapping[str, float | None]],
                       columns: Mapping[str, str] | None = None, published: Sequence[str] = (),
                       title: str = "", ylabel: str = "accuracy (%)"):
    """Grouped bars: one group per column (threat), one bar per row (model), values in percent.

    rows: {model label: {column: percent or None}}. columns: {key: label} in display order
    (default: the keys of the first row). Rows named in ``published`` are hatched: they are
    cited, not measured. A None value draws no bar and writes "n/r" (not reported). The legend
    sits outside the axes, and a value label that does not fit (over another one) is left out.
    For many rows, ``plot_threat_panels`` reads better.
    """
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("no rows to plot")
    if columns is None:
        columns = {k: k for k in next(iter(rows.values()))}
    n_rows = len(rows)
    width = 0.8 / n_rows
    fig = Figure(figsize=(1.6 * len(columns) + 4.5, 3.8), layout="constrained")
    ax = fig.subplots()
    labels, slots = [], {}
    for i, (name, vals) in enumerate(rows.items()):
        xs = [j + (i - (n_rows - 1) / 2) * width for j in range(len(columns))]
        hatch = "//" if name in published else None
        for x, key in zip(xs, columns, strict=True):
            v = vals.get(key)
            if v is None:
                labels.append(ax.text(x, 1, "n/r", ha="center", va="bottom", fontsize=7,
                                      rotation=90))
                continue
            ax.bar(x, v, width, color=f"C{i}", hatch=hatch, edgecolor="white" if hatch else None,
                   label=name if key == next(k for k in columns if vals.get(k) is not None)
                   else None)
            labels.append(ax.text(x, v + 1, f"{v:.0f}", ha="center", va="bottom", fontsize=7))
            slots[id(labels[-1])] = width
    ax.set_xticks(range(len(columns)), list(columns.values()))
    ax.set_ylim(0, 112)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(fontsize=8, loc="outside right upper", title="hatched: published (cited)",
               title_fontsize=8)
    if title:
        ax.set_title(title)
    _fit_labels(fig, labels, slots)
    return fig


def _value_label(ax, v: float, y: float, color: str):
    """A percent label at the end of a horizontal bar: inside it when the bar is long."""
    if v >= 80:  # no room on the right: inside the bar, on a plain patch of its colour
        return ax.text(v - 1.5, y, f"{v:.0f}", ha="right", va="center", fontsize=7,
                       color="white", fontweight="bold",
                       bbox={"facecolor": color, "edgecolor": "none", "pad": 0.6})
    return ax.text(v + 1.5, y, f"{v:.0f}", ha="left", va="center", fontsize=7, color=color)


Values = Mapping[str, "float | None"]  # {column: percent or None}


def plot_threat_panels(ours: Mapping[str, Values], columns: Mapping[str, str],
                       published: Mapping[str, tuple[str, Values]] | None = None,
                       title: str = "", ours_label: str = "ours",
                       published_label: str = "published", note: str = ""):
    """One panel per threat; in each, one row per model: our bar, and the published one below it.

    ours: {model: {column: percent or None}} (display order, top to bottom). columns: {key:
    panel title}. published: {model: (published model's name, {column: percent or None})} for
    the models that have a published counterpart. A None draws no bar and writes "n/r". Bars
    carry a gid "ours:MODEL:COLUMN" or "published:MODEL:COLUMN" (so tests can read them back);
    labels that do not fit are left out; the legend (and ``note``) sit below the panels.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if not ours or not columns:
        raise ValueError("plot_threat_panels needs at least one model and one column")
    published = dict(published or {})
    unknown = set(published) - set(ours)
    if unknown:
        raise ValueError(f"published rows for models not in 'ours': {sorted(unknown)}")
    models = list(ours)
    fig = Figure(figsize=(2.1 * len(columns) + 2.2, 0.62 * len(models) + 1.9),
                 layout="constrained")
    axes = fig.subplots(1, len(columns), sharey=True, squeeze=False)[0]
    h = 0.38
    labels = []
    for ax, (key, head) in zip(axes, columns.items(), strict=True):
        for i, name in enumerate(models):
            rows = [("ours", ours[name].get(key), i - h / 2, "C0", None)]
            if name in published:
                rows.append(("published", published[name][1].get(key), i + h / 2, "0.55", "////"))
            for kind, v, y, color, hatch in rows:
                if v is None:
                    labels.append(ax.text(1, y, "n/r", va="center", fontsize=7, color="0.4"))
                    continue
                bar = ax.barh(y, v, h, color=color, hatch=hatch,
                              edgecolor="white" if hatch else None)[0]
                bar.set_gid(f"{kind}:{name}:{key}")
                labels.append(_value_label(ax, v, y, "C0" if kind == "ours" else "0.35"))
        ax.set_title(head, fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 50, 100], ["0", "50", "100%"], fontsize=8)
        ax.grid(axis="x", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(axis="y", length=0)
    axes[0].set_yticks(range(len(models)), [
        f"{m}\nvs {published[m][0]}" if m in published else m for m in models], fontsize=8)
    axes[0].set_ylim(len(models) - 0.4, -0.6)  # first model on top
    handles = [Patch(color="C0", label=ours_label)]
    if published:
        handles.append(Patch(facecolor="0.55", hatch="////", edgecolor="white",
                             label=published_label))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8,
               frameon=False, title=note or None, title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    _fit_labels(fig, labels)
    return fig


def zoo_vs_published(names: Sequence[str], columns: Sequence[str]):
    """Stored trusted rows of zoo models beside their published counterparts, in percent.

    names: zoo models with a stored trusted result (``advlab.zoo.table.stored_result``; first
    1000 MNIST test images, "strong" attacks). columns: keys of those rows ("clean", "linf",
    "l1", "l2", "rt", "union_lp", "union_all"). Returns (ours, published, sources):
    ours {name: {column: percent}}, published {name: (label, {column: percent or None})} for the
    models with a published row, and the notes of the citations used (``Citation.note``: the
    source and whether it was checked).
    """
    from ..zoo.table import stored_result

    ours, published, sources = {}, {}, []
    for name in dict.fromkeys(names):  # keeps the order, drops repeats
        row = stored_result(name)
        if row.get("strength") != "strong":
            raise ValueError(f"{name}: the stored row is not the trusted ('strong') evaluation")
        ours[name] = {c: None if row.get(c) is None else 100 * row[c] for c in columns}
        cite = published_citation(name)
        if cite is not None:
            published[name] = (cite.label, {c: cite.values.get(c) for c in columns})
            if cite.note not in sources:
                sources.append(cite.note)
    return ours, published, sources


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
