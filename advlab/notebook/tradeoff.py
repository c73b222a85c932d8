"""The l_inf / l_1 trade-off, exactly, on the distribution of Tsipras et al. (2019).

Tramèr & Boneh (2019, Section 3) use this distribution to show that robustness to l_inf and to
l_1 perturbations can be *mutually exclusive*:

- the label y is uniform in {-1, +1};
- one robust but noisy feature: x_0 = y with probability p0 (> 1/2), else -y;
- d weak features x_1 .. x_d, i.i.d. N(eta y, 1) with eta = alpha / sqrt(d).

For a linear classifier f(x) = a x_0 + w (x_1 + ... + x_d) with a, w >= 0, write b = w sqrt(d),
s = y x_0 and S = y (x_1 + ... + x_d) / sqrt(d) ~ N(alpha, 1). The margin is y f(x) = a s + b S.
The strongest l_p attack on a linear model lowers the margin by eps times the dual norm of the
weights (Hölder): l_inf by eps (a + b sqrt(d)), l_1 by eps max(a, b / sqrt(d)). So every
accuracy is P(a s + b S > drop) = p0 Phi(alpha - t(+1)) + (1 - p0) Phi(alpha - t(-1)) with
t(s) = (drop - a s) / b, and the union keeps the larger of the two drops (S is shared).

All accuracies depend on (a, b) only through r = a / b; r = inf is the classifier that only
looks at x_0. ``simulate`` checks the formulas by drawing samples and attacking them for real.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TradeoffDistribution", "phi"]

THREATS = ("clean", "linf", "l1", "union")


def phi(z):
    """The standard normal CDF Phi, elementwise (floats or arrays; float64)."""
    z = torch.as_tensor(np.asarray(z, dtype=np.float64))
    return torch.special.ndtr(z).numpy()


def _weights(r) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) for ratios r = a / b, with b = 1, and (a, b) = (1, 0) for r = inf."""
    r = np.asarray(r, dtype=np.float64)
    inf = np.isinf(r)
    return np.where(inf, 1.0, r), np.where(inf, 0.0, 1.0)


@dataclass(frozen=True)
class TradeoffDistribution:
    """The distribution (p0, alpha, d) and the exact accuracies of linear classifiers on it.

    ``eps_inf`` defaults to 2 eta (moves every weak feature's mean from eta y to -eta y) and
    ``eps_1`` to 2 (flips x_0): the budgets of the paper's l_inf / l_1 result.
    """

    p0: float = 0.9
    alpha: float = 2.0
    d: int = 400

    def __post_init__(self):
        if not 0.5 < self.p0 <= 1.0:
            raise ValueError(f"p0 must be in (0.5, 1], got {self.p0}")
        if self.alpha <= 0 or self.d < 1:
            raise ValueError(f"need alpha > 0 and d >= 1, got alpha={self.alpha}, d={self.d}")

    @property
    def eta(self) -> float:
        """Mean of each weak feature (times y): alpha / sqrt(d)."""
        return self.alpha / math.sqrt(self.d)

    def budgets(self, eps_inf=None, eps_1=None) -> tuple[float, float]:
        """(eps_inf, eps_1), defaulting to the paper's (2 eta, 2)."""
        return (2 * self.eta if eps_inf is None else float(eps_inf),
                2.0 if eps_1 is None else float(eps_1))

    def drops(self, r, eps_inf=None, eps_1=None) -> dict[str, np.ndarray]:
        """How much each attack lowers the margin y f(x), for weights (a, b) given by r."""
        e_inf, e_1 = self.budgets(eps_inf, eps_1)
        a, b = _weights(r)
        sd = math.sqrt(self.d)
        linf = e_inf * (a + b * sd)           # eps times the l_1 norm of the weights
        l1 = e_1 * np.maximum(a, b / sd)      # eps times the l_inf norm of the weights
        return {"clean": np.zeros_like(a), "linf": linf, "l1": l1,
                "union": np.maximum(linf, l1)}

    def accuracies(self, r, eps_inf=None, eps_1=None) -> dict[str, np.ndarray]:
        """Exact clean, l_inf, l_1 and union accuracy of the classifier(s) with a / b = r.

        r: a float or an array (np.inf allowed); each value comes back with r's shape.
        """
        a, b = _weights(r)
        out = {}
        for name, drop in self.drops(r, eps_inf, eps_1).items():
            acc = 0.0
            for s, prob in ((1.0, self.p0), (-1.0, 1.0 - self.p0)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    t = (drop - a * s) / b
                smooth = phi(self.alpha - np.where(b > 0, t, 0.0))
                # b = 0: the margin a s - drop is not random; it counts iff it is positive
                acc = acc + prob * np.where(b > 0, smooth, (a * s - drop > 0).astype(float))
            out[name] = acc if np.ndim(r) else float(acc)
        return out

    def frontier(self, r=None, eps_inf=None, eps_1=None) -> dict[str, np.ndarray]:
        """Accuracies along a log-spaced grid of r (default 1e-3 .. 1e3, plus 0 and inf)."""
        if r is None:
            r = np.concatenate([[0.0], np.logspace(-3, 3, 601), [np.inf]])
        r = np.asarray(r, dtype=np.float64)
        return {"r": r, **self.accuracies(r, eps_inf, eps_1)}

    def best(self, eps_inf=None, eps_1=None) -> dict[str, tuple[float, float]]:
        """Threat -> (best accuracy over r, the r that reaches it).

        A log-spaced grid (plus 0 and inf), then two zooms around the best grid point: the
        union's optimum is a sharp peak where the l_inf and l_1 curves cross.
        """
        f = self.frontier(eps_inf=eps_inf, eps_1=eps_1)
        out = {}
        for name in THREATS:
            r, acc = f["r"], f[name]
            i = int(np.argmax(acc))
            for _ in range(2):
                if not 0 < i < len(r) - 1 or np.isinf(r[i + 1]):
                    break
                r = np.linspace(r[i - 1], r[i + 1], 401)
                acc = self.accuracies(r, eps_inf, eps_1)[name]
                i = int(np.argmax(acc))
            out[name] = (float(acc[i]), float(r[i]))
        return out

    def sample(self, n: int, generator: torch.Generator | None = None):
        """n examples: x (n, d + 1) float64 (x_0 first), y (n,) in {-1, +1} float64."""
        y = torch.randint(0, 2, (n,), generator=generator, dtype=torch.float64) * 2 - 1
        keep = torch.rand(n, generator=generator, dtype=torch.float64) < self.p0
        x0 = torch.where(keep, y, -y)
        weak = torch.randn(n, self.d, generator=generator, dtype=torch.float64)
        weak = weak + self.eta * y[:, None]
        return torch.cat([x0[:, None], weak], dim=1), y

    def simulate(self, r: float, n: int = 100_000, eps_inf=None, eps_1=None,
                 generator: torch.Generator | None = None, chunk: int = 10_000) -> dict:
        """Monte-Carlo accuracies of the classifier a / b = r, attacking each sample for real.

        The l_inf attack moves every feature by eps_inf against y times the sign of its weight;
        the l_1 attack spends eps_1 on the feature with the largest weight. An example counts
        for the union when both attacked copies are still classified correctly.
        """
        e_inf, e_1 = self.budgets(eps_inf, eps_1)
        a, b = (float(v) for v in _weights(r))
        w = torch.full((self.d + 1,), b / math.sqrt(self.d), dtype=torch.float64)
        w[0] = a
        top = torch.zeros_like(w)
        top[int(torch.argmax(w))] = 1.0
        hits = dict.fromkeys(THREATS, 0)
        done = 0
        while done < n:
            m = min(chunk, n - done)
            x, y = self.sample(m, generator)
            yc = y[:, None]
            correct = {
                "clean": (x @ w) * y > 0,
                "linf": ((x - e_inf * yc * torch.sign(w)) @ w) * y > 0,
                "l1": ((x - e_1 * yc * top) @ w) * y > 0,
            }
            correct["union"] = correct["linf"] & correct["l1"]
            for name in THREATS:
                hits[name] += int(correct[name].sum())
            done += m
        return {name: hits[name] / n for name in THREATS}
