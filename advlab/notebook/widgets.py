"""Figures and interactive explorers for the course notebooks.

    from advlab.notebook.widgets import attack_figure, AttackExplorer, TradeoffExplorer
    attack_figure(model, x, x_adv, classes=MNIST_CLASSES)     # image, perturbation, adversarial
    AttackExplorer(model, x, y).widget                         # eps slider, threat, image
    TradeoffExplorer().widget                                  # the l_inf / l_1 trade-off, live

The explorers draw with matplotlib's Agg backend into a PNG shown by an ``ipywidgets.Image``,
so they work the same in JupyterLab, Colab and Binder, and every update goes through the kernel.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from torch import nn

from ..threats import registry

__all__ = [
    "MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "classes_for",
    "attack_figure",
    "ball_figure",
    "AttackExplorer",
    "TradeoffExplorer",
    "tradeoff_figure",
]

MNIST_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def classes_for(dataset: str) -> tuple[str, ...]:
    """Class names of "mnist" or "cifar10"."""
    return {"mnist": MNIST_CLASSES, "cifar10": CIFAR10_CLASSES}[dataset.lower()]


def _image(ax, img: torch.Tensor, title: str, signed: bool = False):
    """Show a (C, H, W) image; ``signed`` shows a perturbation around 0 (red +, blue -)."""
    img = img.detach().cpu()
    if signed:
        lim = float(img.abs().max()) or 1.0
        if img.shape[0] == 1:
            ax.imshow(img[0].numpy(), cmap="seismic", vmin=-lim, vmax=lim)
        else:  # colour: grey is 0, each channel's sign shows as its colour
            ax.imshow((0.5 + img / (2 * lim)).permute(1, 2, 0).numpy())
    elif img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).softmax(-1).cpu()


def attack_figure(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, classes=MNIST_CLASSES,
                  norm_label: str = "", fig=None):
    """The "panda -> gibbon" picture for one image: x, x_adv - x, x_adv, and confidence bars.

    x, x_adv: (1, C, H, W) or (C, H, W) in [0, 1]. Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    x = x if x.dim() == 4 else x[None]
    x_adv = x_adv if x_adv.dim() == 4 else x_adv[None]
    p, q = _probs(model, x)[0], _probs(model, x_adv)[0]
    i, j = int(p.argmax()), int(q.argmax())
    if fig is None:
        fig = plt.figure(figsize=(11, 2.8))
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    _image(axes[0], x[0], f"{classes[i]!r}: {100 * p[i]:.1f}%")
    delta = (x_adv - x)[0]
    _image(axes[1], delta, f"perturbation {norm_label}".strip(), signed=True)
    _image(axes[2], x_adv[0], f"{classes[j]!r}: {100 * q[j]:.1f}%")
    k = np.arange(len(classes))
    axes[3].bar(k - 0.2, p.numpy(), 0.4, label="before", color="tab:blue")
    axes[3].bar(k + 0.2, q.numpy(), 0.4, label="after", color="tab:red")
    axes[3].set_xticks(k, [c[:5] for c in classes], fontsize=8,
                       rotation=0 if len(classes[0]) < 3 else 45)
    axes[3].set_ylim(0, 1)
    axes[3].set_ylabel("confidence")
    axes[3].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def ball_figure(eps=1.0, fig=None):
    """The unit l_inf, l_2 and l_1 balls in 2-D (scaled by eps), with a vertex of each marked."""
    import matplotlib.pyplot as plt

    t = np.linspace(0, 2 * np.pi, 400)
    if fig is None:
        fig = plt.figure(figsize=(4, 4))
    ax = fig.subplots()
    square = eps * np.array([[1, -1, -1, 1, 1], [1, 1, -1, -1, 1]])
    ax.plot(square[0], square[1], label=r"$\ell_\infty$")
    ax.plot(eps * np.cos(t), eps * np.sin(t), label=r"$\ell_2$")
    ax.plot(eps * np.array([1, 0, -1, 0, 1]), eps * np.array([0, 1, 0, -1, 0]), label=r"$\ell_1$")
    ax.set_aspect("equal")
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"balls of radius {eps:g} in 2-D")
    fig.tight_layout()
    return fig


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _agg_figure(**kw):
    from matplotlib.figure import Figure

    return Figure(**kw)  # not registered with pyplot: never shown twice, never leaked


class AttackExplorer:
    """eps slider, threat choice and image choice; the attack picture updates live.

    model: (B, C, H, W) in [0, 1] -> logits; x (N, C, H, W), y (N,) the images to choose from.
    Each update runs ``advlab.pgd`` (``steps`` steps, a fixed seed) on the chosen image.
    ``explorer.widget`` is the ipywidgets box to display; ``explorer.update()`` redraws.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, dataset: str = "mnist",
                 steps: int = 20, threats=("linf", "l2", "l1"), n_images: int = 10):
        import ipywidgets as W

        self.model, self.steps, self.dataset = model, steps, dataset.lower()
        self.x, self.y = x[:n_images], y[:n_images]
        self.classes = classes_for(self.dataset)
        budgets = registry.budgets(self.dataset)
        # slider ranges per threat (max eps, step) from the registry; the default is the budget
        self.threats = [t for t in threats if t in budgets
                        and self.dataset in registry.info(t).sliders]
        self.budgets = {t: budgets[t] for t in self.threats}
        first = self.threats[0]
        top, step = registry.info(first).sliders[self.dataset]
        self.eps = W.FloatSlider(value=self.budgets[first], min=0.0, max=top, step=step,
                                 description="eps", continuous_update=False, readout_format=".3g")
        self.threat = W.Dropdown(options=self.threats, value=first, description="threat")
        self.index = W.Dropdown(
            options=[(f"#{i} (label {self.classes[int(c)]})", i) for i, c in enumerate(self.y)],
            value=0, description="image")
        self.image = W.Image(format="png")
        self.caption = W.HTML()
        self.caption.add_class("advlab-caption")
        self.threat.observe(self._threat_changed, names="value")
        for w in (self.eps, self.index):
            w.observe(lambda _change: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.threat, self.eps, self.index]), self.image,
                              self.caption])
        self.last = None
        self.update()

    def _threat_changed(self, change):
        top, step = registry.info(change["new"]).sliders[self.dataset]
        with self.eps.hold_trait_notifications():
            self.eps.max = max(top, self.eps.min)
            self.eps.step = step
            self.eps.value = self.budgets[change["new"]]
        self.update()

    def attack(self, threat: str, eps: float, i: int):
        """The PGD adversarial version of image ``i`` (1, C, H, W) under ``threat`` at ``eps``."""
        from ..attacks import pgd
        x, y = self.x[i:i + 1], self.y[i:i + 1]
        if eps <= 0:
            return x.clone()
        tm = registry.make(threat, eps)
        gen = torch.Generator(device=x.device).manual_seed(0)
        return pgd(self.model, x, y, tm, steps=self.steps, generator=gen).x_adv

    def update(self):
        """Run the attack for the current settings and redraw."""
        threat, eps, i = self.threat.value, float(self.eps.value), int(self.index.value)
        x = self.x[i:i + 1]
        x_adv = self.attack(threat, eps, i)
        norm = registry.make(threat, 1.0).norm(x_adv - x)
        label = registry.info(threat).label
        fig = attack_figure(self.model, x, x_adv, self.classes,
                            f"({label} norm {float(norm):.3g})", fig=_agg_figure(figsize=(11, 2.8)))
        self.image.value = _png(fig)
        p, q = _probs(self.model, x)[0], _probs(self.model, x_adv)[0]
        before, after = int(p.argmax()), int(q.argmax())
        self.last = {"threat": threat, "eps": eps, "index": i, "before": before,
                     "after": after, "confidence": float(q[after]), "norm": float(norm)}
        verdict = "fooled" if after != int(self.y[i]) else "still correct"
        self.caption.value = (
            f"{label} eps = {eps:.3g}: {self.classes[before]!r} ({100 * p[before]:.1f}%) &rarr; "
            f"{self.classes[after]!r} ({100 * q[after]:.1f}%), <b>{verdict}</b>")
        return self.last


class TradeoffExplorer:
    """Sliders for p0, alpha, d, the budgets and r; the exact accuracies move live.

    Left: clean, l_inf, l_1 and union accuracy against r = a / b. Right: the (l_inf, l_1)
    accuracy pairs that linear classifiers can reach, with the chosen one marked. Budgets are
    given as multiples of the paper's (eps_inf = 2 eta, eps_1 = 2).
    """

    def __init__(self, p0: float = 0.9, alpha: float = 2.0, d: int = 400):
        import ipywidgets as W

        def slider(cls, value, lo, hi, step, desc, fmt=".2f"):
            return cls(value=value, min=lo, max=hi, step=step, description=desc,
                       continuous_update=False, readout_format=fmt,
                       style={"description_width": "110px"})

        self.p0 = slider(W.FloatSlider, p0, 0.55, 1.0, 0.01, "p0")
        self.alpha = slider(W.FloatSlider, alpha, 0.25, 4.0, 0.05, "alpha")
        self.log_d = slider(W.FloatSlider, math.log10(d), 0.0, 6.0, 0.1, "log10 d", ".1f")
        self.k_inf = slider(W.FloatSlider, 1.0, 0.0, 2.0, 0.05, "eps_inf / (2 eta)")
        self.k_1 = slider(W.FloatSlider, 1.0, 0.0, 2.0, 0.05, "eps_1 / 2")
        self.log_r = slider(W.FloatSlider, math.log10(2.0), -3.0, 3.0, 0.05, "log10 r")
        self.controls = [self.p0, self.alpha, self.log_d, self.k_inf, self.k_1, self.log_r]
        for w in self.controls:
            w.observe(lambda _change: self.update(), names="value")
        self.image = W.Image(format="png")
        self.caption = W.HTML()
        self.caption.add_class("advlab-caption")
        self.widget = W.VBox([W.HBox([W.VBox(self.controls[:3]), W.VBox(self.controls[3:])]),
                              self.image, self.caption])
        self.last = None
        self.update()

    def distribution(self):
        from .tradeoff import TradeoffDistribution

        return TradeoffDistribution(self.p0.value, self.alpha.value,
                                    max(1, round(10 ** self.log_d.value)))

    def update(self):
        """Recompute the exact accuracies for the current sliders and redraw.

        The picture marks the chosen r on every curve and says "at r = ..." in its title, as the
        caption below it does, so that moving the r slider visibly moves both.
        """
        dist = self.distribution()
        e_inf, e_1 = 2 * dist.eta * self.k_inf.value, 2.0 * self.k_1.value
        f = dist.frontier(eps_inf=e_inf, eps_1=e_1)
        r = 10 ** self.log_r.value
        here = dist.accuracies(r, e_inf, e_1)
        best = dist.best(e_inf, e_1)
        at_best = dist.accuracies(best["union"][1], e_inf, e_1)
        fig = _agg_figure(figsize=(11, 3.8), layout="constrained")
        title = f"d = {dist.d}, eps_inf = {e_inf:.3g}, eps_1 = {e_1:.3g}"
        tradeoff_figure(fig, f, r, here, (best["union"][1], at_best), title=title)
        self.image.value = _png(fig)
        self.last = {"d": dist.d, "r": r, "eps_inf": e_inf, "eps_1": e_1, **here,
                     "best": best}
        self.caption.value = (
            f"at r = {r:.3g}: clean {100 * here['clean']:.1f}%, l_inf {100 * here['linf']:.1f}%,"
            f" l_1 {100 * here['l1']:.1f}%, union {100 * here['union']:.1f}%. Best over r: "
            f"l_inf {100 * best['linf'][0]:.1f}%, l_1 {100 * best['l1'][0]:.1f}%, "
            f"<b>union {100 * best['union'][0]:.1f}%</b> (r = {best['union'][1]:.3g})")
        return self.last


_CURVES = (("clean", "0.5"), ("linf", "tab:blue"), ("l1", "tab:orange"), ("union", "tab:red"))


def tradeoff_figure(fig, f: dict, r: float, here: dict, best: tuple[float, dict],
                    title: str = ""):
    """Draw the explorer's picture into ``fig``: left, each accuracy against r (log scale) with
    the chosen r marked on every curve; right, the (l_inf, l_1) pairs linear classifiers reach,
    the chosen one and the best-union one marked. f: ``TradeoffDistribution.frontier`` output;
    here: the accuracies at r; best: (the r of the best union accuracy, the accuracies there).
    Returns fig."""
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    rr = np.clip(f["r"], 1e-3, 1e3)
    r_shown = min(max(r, 1e-3), 1e3)
    for name, color in _CURVES:
        left.plot(rr, f[name], color=color, label=name)
        left.plot([r_shown], [here[name]], "o", color=color, ms=6, mec="k", mew=0.6)
    left.axvline(r_shown, color="k", lw=0.8, ls="--")
    left.set_xscale("log")
    left.set_xlabel("r = a / b  (weight on x_0 / weight on the weak features)")
    left.set_ylabel("exact accuracy")
    left.set_ylim(-0.02, 1.02)
    left.set_title(f"at r = {r:.3g}: l_inf {100 * here['linf']:.1f}%, l_1 {100 * here['l1']:.1f}%,"
                   f" union {100 * here['union']:.1f}%", fontsize=10)
    left.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    right.plot(f["linf"], f["l1"], color="0.3", label="linear classifiers")
    right.plot([here["linf"]], [here["l1"]], "o", color="tab:red", ms=7, mec="k", mew=0.6,
               label=f"r = {r:.3g}")
    r_best, at_best = best
    right.plot([at_best["linf"]], [at_best["l1"]], "*", color="k", ms=9,
               label=f"best union (r = {r_best:.3g})")
    right.set_xlabel("accuracy under l_inf")
    right.set_ylabel("accuracy under l_1")
    right.set_xlim(-0.02, 1.02)
    right.set_ylim(-0.02, 1.02)
    right.set_aspect("equal")
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    right.set_title(title, fontsize=9)
    return fig
