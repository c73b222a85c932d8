"""Exercise 4: the l_inf / l_1 trade-off distribution, analytically and by simulation.

The distribution (Tsipras et al., 2019, as used by Tramèr & Boneh): y uniform in {-1, +1}; a
robust feature x_0 = y with probability p0, else -y; d weak features x_i ~ N(eta*y, 1) with
eta = alpha / sqrt(d). A linear classifier f(x) = a*x_0 + w*sum_i x_i with b = w*sqrt(d).
The formulas are those of the course's design note (shared/notes/tradeoff-distribution.md).
"""

from __future__ import annotations

import math

import torch

from ..codec import GeneratorArg
from ..spec import Call, Case, Exercise, Question, Verdict, describe_value, number_verdict

# ---------------------------------------------------------------------------------------------
# The grader's reference answers


def _phi(z):
    return 0.5 * (1 + torch.erf(torch.as_tensor(z, dtype=torch.float64) / math.sqrt(2)))


def _thresholds(d, a, b, threat, eps):
    """t(s) for s = +1 and s = -1: the example is correct iff S = y*sum(x_i)/sqrt(d) > t(s)."""
    if threat == "clean":
        drop = 0.0
    elif threat == "linf":
        drop = eps * (a + b * math.sqrt(d))
    elif threat == "l1":
        drop = eps * max(a, b / math.sqrt(d))
    else:
        raise ValueError(f"threat must be 'clean', 'linf' or 'l1', got {threat!r}")
    return (drop - a) / b, (drop + a) / b


def ref_accuracy(p0, alpha, d, a, b, threat, eps=0.0):
    """Exact accuracy of f under one threat (b > 0)."""
    t_pos, t_neg = _thresholds(d, a, b, threat, eps)
    return float(p0 * _phi(alpha - t_pos) + (1 - p0) * _phi(alpha - t_neg))


def ref_union_accuracy(p0, alpha, d, a, b, eps_inf, eps_1):
    """Exact accuracy when the adversary picks the worse of the two attacks per example."""
    ti_pos, ti_neg = _thresholds(d, a, b, "linf", eps_inf)
    t1_pos, t1_neg = _thresholds(d, a, b, "l1", eps_1)
    return float(
        p0 * _phi(alpha - max(ti_pos, t1_pos)) + (1 - p0) * _phi(alpha - max(ti_neg, t1_neg))
    )


def ref_simulate(p0, alpha, d, a, b, eps_inf, eps_1, n, generator=None):
    """Monte-Carlo estimates of the clean, l_inf, l_1 and union accuracies."""
    y = torch.randint(0, 2, (n,), generator=generator, dtype=torch.float64) * 2 - 1
    flip = torch.rand(n, generator=generator, dtype=torch.float64) >= p0
    x0 = torch.where(flip, -y, y)
    eta, w = alpha / math.sqrt(d), b / math.sqrt(d)
    xs = torch.randn(n, d, generator=generator, dtype=torch.float64) + eta * y[:, None]
    margin = y * (a * x0 + w * xs.sum(dim=1))
    ok_inf = margin - eps_inf * (a + w * d) > 0
    ok_1 = margin - eps_1 * max(a, w) > 0
    return {
        "clean": (margin > 0).double().mean().item(),
        "linf": ok_inf.double().mean().item(),
        "l1": ok_1.double().mean().item(),
        "union": (ok_inf & ok_1).double().mean().item(),
    }


def _accuracies_over_r(p0, alpha, d, r, eps_inf, eps_1):
    """l_inf, l_1 and union accuracies for a = r, b = 1, vectorised over the tensor r."""
    sd = math.sqrt(d)
    ti = (eps_inf * (r + sd) - r, eps_inf * (r + sd) + r)
    t1 = (eps_1 * torch.clamp(r, min=1 / sd) - r, eps_1 * torch.clamp(r, min=1 / sd) + r)

    def acc(t_pos, t_neg):
        return p0 * _phi(alpha - t_pos) + (1 - p0) * _phi(alpha - t_neg)

    union = acc(torch.maximum(ti[0], t1[0]), torch.maximum(ti[1], t1[1]))
    return {"linf": acc(*ti), "l1": acc(*t1), "union": union}


def ref_optimal_accuracies(p0, alpha, d, eps_inf, eps_1):
    """Best l_inf, l_1 and union accuracies over all ratios r = a/b in [0, inf]."""
    r = torch.cat(
        [torch.zeros(1, dtype=torch.float64), torch.logspace(-4, 4, 40001, dtype=torch.float64)]
    )
    best = {
        k: v.max().item() for k, v in _accuracies_over_r(p0, alpha, d, r, eps_inf, eps_1).items()
    }
    only_x0 = {"linf": p0 if eps_inf < 1 else 0.0, "l1": p0 if eps_1 < 1 else 0.0}
    only_x0["union"] = min(only_x0.values())
    return {k: max(v, only_x0[k]) for k, v in best.items()}


# ---------------------------------------------------------------------------------------------
# Cases


def _describe(**kw):
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v!r}" for k, v in kw.items()
    )


def _number_case(name, ref, kwargs, tol, what, hidden=False):
    expected = ref(**kwargs)

    def judge(outcomes):
        return number_verdict(outcomes[0].value, expected, tol, what)

    return Case(name, [Call((), dict(kwargs))], judge, _describe(**kwargs), 1.0, hidden)


P = {"p0": 0.9, "alpha": 2.0, "d": 400}


def _accuracy_cases():
    base = dict(P, a=2.0, b=1.0)
    return [
        _number_case(
            "clean", ref_accuracy, dict(base, threat="clean", eps=0.0), 1e-6, "the clean accuracy"
        ),
        _number_case(
            "l_inf, eps=0.2",
            ref_accuracy,
            dict(base, threat="linf", eps=0.2),
            1e-6,
            "the l_inf accuracy",
        ),
        _number_case(
            "l_1, eps=2", ref_accuracy, dict(base, threat="l1", eps=2.0), 1e-6, "the l_1 accuracy"
        ),
        _number_case(
            "hidden: l_1 with a weak-feature-heavy classifier",
            ref_accuracy,
            dict(P, a=0.01, b=1.0, threat="l1", eps=2.0),
            1e-6,
            "the l_1 accuracy",
            hidden=True,
        ),
    ]


def _union_cases():
    return [
        _number_case(
            "r = 2.22",
            ref_union_accuracy,
            dict(P, a=2.22, b=1.0, eps_inf=0.2, eps_1=2.0),
            1e-6,
            "the union accuracy",
        ),
        _number_case(
            "r = 0.5, d = 100",
            ref_union_accuracy,
            dict(p0=0.8, alpha=1.5, d=100, a=0.5, b=1.0, eps_inf=0.3, eps_1=2.0),
            1e-6,
            "the union accuracy",
        ),
        _number_case(
            "hidden: a large d",
            ref_union_accuracy,
            dict(p0=0.9, alpha=2.0, d=10_000, a=3.0, b=1.5, eps_inf=0.04, eps_1=2.0),
            1e-6,
            "the union accuracy",
            hidden=True,
        ),
    ]


def _simulate_judge(exact, n):
    """A judge: a dict with the keys of ``exact``, each estimate (of ``n`` samples) close to the
    exact value, other seeds giving other estimates and the same seed the same."""

    def judge(outcomes):
        outs = [o.value for o in outcomes]
        for out in outs:
            if not isinstance(out, dict) or set(out) != set(exact):
                return Verdict(
                    False,
                    "a dict with keys 'clean', 'linf', 'l1', 'union'",
                    describe_value(out)
                    if not isinstance(out, dict)
                    else f"a dict with keys {sorted(out)}",
                )
        for key, value in exact.items():
            tol = 4.5 * math.sqrt(max(value * (1 - value), 1e-4) / n) + 1e-3
            v = number_verdict(outs[0][key], value, tol, f"the simulated {key} accuracy")
            if not v.passed:
                v.note = (
                    "a simulation this large should land close to the exact formula: "
                    "check how the attack changes the margin y*f(x)"
                )
                return v
        if outs[0] == outs[1]:
            return Verdict(
                False,
                "different estimates for different generators",
                "identical estimates",
                "draw all samples from `generator`",
            )
        if outs[0] != outs[2]:
            return Verdict(
                False,
                "the same estimates for the same seed",
                "different estimates",
                "draw all samples from `generator` (not the global RNG)",
            )
        return Verdict(True)

    return judge


def _simulate_case(name, kwargs, n, hidden=False):
    model = {k: kwargs[k] for k in ("p0", "alpha", "d", "a", "b")}
    exact = {
        "clean": ref_accuracy(**model, threat="clean"),
        "linf": ref_accuracy(**model, threat="linf", eps=kwargs["eps_inf"]),
        "l1": ref_accuracy(**model, threat="l1", eps=kwargs["eps_1"]),
        "union": ref_union_accuracy(**kwargs),
    }
    calls = [Call((), dict(kwargs, n=n, generator=GeneratorArg(s))) for s in (1, 2, 1)]
    describe = _describe(**kwargs, n=n) + ", generators seeded 1, 2 and 1 again"
    return Case(name, calls, _simulate_judge(exact, n), describe, 1.5, hidden)


def _simulate_cases():
    return [
        _simulate_case(
            "d=100, r=2",
            dict(p0=0.9, alpha=2.0, d=100, a=2.0, b=1.0, eps_inf=0.4, eps_1=2.0),
            20_000,
        ),
        _simulate_case(
            "hidden: d=50, r=0.3",
            dict(p0=0.7, alpha=1.0, d=50, a=0.3, b=1.0, eps_inf=0.2, eps_1=1.5),
            20_000,
            hidden=True,
        ),
    ]


def _optimal_case(name, kwargs, hidden=False):
    expected = ref_optimal_accuracies(**kwargs)

    def judge(outcomes):
        out = outcomes[0].value
        if not isinstance(out, dict) or set(out) != set(expected):
            return Verdict(False, "a dict with keys 'linf', 'l1', 'union'", describe_value(out))
        for key, value in expected.items():
            v = number_verdict(out[key], value, 2e-3, f"the best {key} accuracy")
            if not v.passed:
                v.note = (
                    "maximise over the ratio r = a/b >= 0, including the limit r -> inf "
                    "(the classifier that only uses x_0)"
                )
                return v
        return Verdict(True)

    return Case(name, [Call((), dict(kwargs))], judge, _describe(**kwargs), 1.0, hidden)


def _optimal_cases():
    return [
        _optimal_case("the design note's example", dict(P, eps_inf=0.2, eps_1=2.0)),
        _optimal_case(
            "hidden: p0=0.8, alpha=1.5, d=100",
            dict(p0=0.8, alpha=1.5, d=100, eps_inf=0.3, eps_1=2.0),
            hidden=True,
        ),
    ]


EXERCISE = Exercise(
    name="ex4",
    title="The l_inf / l_1 trade-off: exact accuracies and a simulation",
    notebook="ex4_tradeoff.ipynb",
    questions=[
        Question(
            "ex4.accuracy",
            "accuracy",
            "Exact accuracy under one threat",
            "write y*f(x) = a*s + b*S with S ~ N(alpha, 1): an l_inf attack lowers it by "
            "eps times the l_1 norm of the weights, an l_1 attack by eps times their l_inf "
            "norm; then average over s = +1 (prob. p0) and s = -1",
            _accuracy_cases,
        ),
        Question(
            "ex4.union_accuracy",
            "union_accuracy",
            "Exact accuracy against the union",
            "S is shared by both attacks, so per value of s the example survives iff S is "
            "above the larger of the two thresholds",
            _union_cases,
        ),
        Question(
            "ex4.simulate",
            "simulate",
            "Check by simulation",
            "sample y, x_0 and the d weak features with the generator, compute the margin "
            "y*f(x), and subtract each attack's drop; count the margins above 0",
            _simulate_cases,
        ),
        Question(
            "ex4.optimal_accuracies",
            "optimal_accuracies",
            "The best accuracies",
            "the accuracies only depend on r = a/b: scan r over a wide log-spaced grid "
            "(and r = 0 and r -> inf) and keep each maximum",
            _optimal_cases,
        ),
    ],
)
