"""Exercise 6: the affine combination of an l_inf and an l_2 threat (Tramèr & Boneh, 2019).

With weight w, a perturbation is a pair (delta_a, delta_b): delta_a in the l_inf ball of radius
w * eps_inf, delta_b in the l_2 ball of radius (1 - w) * eps_2, and x + delta_a + delta_b in
[0, 1]. PGD alternates: even steps move delta_a, odd steps move delta_b.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...threats import L2, Linf
from ..spec import Call, Case, Exercise, Question, Verdict, close_verdict, shape_verdict
from .common import images, live_model, model_arg, perturbation_summary

# ---------------------------------------------------------------------------------------------
# The grader's reference answers


def _norms(t):
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def ref_affine_project(delta_a, delta_b, x, eps_inf, eps_2, weight):
    """Project part a on its scaled l_inf ball and the box, then part b on its l_2 ball and box."""
    ea, eb = weight * eps_inf, (1 - weight) * eps_2
    da = (x + delta_a.clamp(-ea, ea)).clamp(0, 1) - x
    base = x + da
    n = _norms(delta_b)
    db = delta_b * torch.where(n > eb, eb / n.clamp_min(1e-12), torch.ones_like(n))
    db = (base + db).clamp(0, 1) - base
    return da, db


def ref_affine_step(delta_a, delta_b, grad, step_a, step_b, t):
    """Even t: an l_inf sign step on part a; odd t: an l_2 normalised step on part b (the
    library's own steepest-ascent steps, ``Linf.step`` and ``L2.step``)."""
    if t % 2 == 0:
        return Linf().step(delta_a, grad, step_a), delta_b
    return delta_a, L2().step(delta_b, grad, step_b)


def ref_affine_attack(model, x, y, eps_inf, eps_2, weight, steps, step_a, step_b):
    """PGD over the affine set from delta = (0, 0); returns x + delta_a + delta_b."""
    da, db = torch.zeros_like(x), torch.zeros_like(x)
    for t in range(steps):
        x_adv = (x + da + db).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        da, db = ref_affine_step(da, db, grad, step_a, step_b, t)
        da, db = ref_affine_project(da, db, x, eps_inf, eps_2, weight)
    return (x + da + db).detach()


# ---------------------------------------------------------------------------------------------
# Cases


def _randn(shape, seed, scale):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def _parts_summary(pair) -> str:
    da, db = pair
    return (
        f"delta_a: max |.| = {da.abs().max().item():.4g}; delta_b: l_2 norms up to "
        f"{db.flatten(1).norm(dim=1).max().item():.4g}"
    )


def _pair_judge(expected):
    def judge(outcomes):
        got = outcomes[0].value
        if not isinstance(got, (list, tuple)) or len(got) != 2:
            return Verdict(False, "a pair (delta_a, delta_b)", f"{type(got).__name__}")
        for name, g, e in zip(("delta_a", "delta_b"), got, expected, strict=True):
            v = close_verdict(g, e, atol=1e-5, what=name)
            if not v.passed:
                if shape_verdict(g, tuple(e.shape)) is None:
                    v.expected, v.got = _parts_summary(expected), _parts_summary(got)
                v.note = f"{name} is off: {v.note}"
                return v
        return Verdict(True)

    return judge


def _project_case(name, weight, seed, hidden=False):
    x, _ = images(6, 1200 + seed)
    da, db = _randn(x.shape, seed, 0.3), _randn(x.shape, seed + 1, 0.2)
    args = (da, db, x, 0.2, 2.0, weight)
    describe = (
        f"6 MNIST images x, random delta_a (std 0.3) and delta_b (std 0.2), eps_inf=0.2, "
        f"eps_2=2.0, weight={weight}"
    )
    return Case(name, [Call(args)], _pair_judge(ref_affine_project(*args)), describe, 1.0, hidden)


def _project_cases():
    return [
        _project_case("weight 0.5", 0.5, 1),
        _project_case("weight 0.25", 0.25, 3),
        _project_case("hidden: weight 1 (no l_2 part)", 1.0, 5, hidden=True),
    ]


def _step_case(name, t, seed, hidden=False, zero_row=False):
    da, db, g = (_randn((4, 1, 28, 28), seed + i, 0.1) for i in range(3))
    if zero_row:
        g[1] = 0
    args = (da, db, g, 0.05, 0.5, t)
    describe = (
        f"random delta_a, delta_b and grad of shape (4, 1, 28, 28), step_a=0.05, "
        f"step_b=0.5, t={t}" + (", example 1 has a zero gradient" if zero_row else "")
    )
    return Case(name, [Call(args)], _pair_judge(ref_affine_step(*args)), describe, 1.0, hidden)


def _step_cases():
    return [
        _step_case("t = 0 moves part a", 0, 10),
        _step_case("t = 1 moves part b", 1, 20),
        _step_case("hidden: t = 5 with a zero gradient", 5, 30, hidden=True, zero_row=True),
    ]


def _attack_case(name, arch, weight, steps, offset, hidden=False, points=1.0):
    m = model_arg(arch, trained=arch == "tiny_mlp")
    x, y = images(8, offset)
    args = (m, x, y, 0.2, 2.0, weight, steps, 0.05, 0.5)
    expected = ref_affine_attack(live_model(m), *args[1:])

    def judge(outcomes):
        got = outcomes[0].value
        v = close_verdict(
            got, expected, atol=1e-4, summary=perturbation_summary(x), what="an adversarial batch"
        )
        if v.passed or shape_verdict(got, tuple(expected.shape)) is not None:
            return v  # a wrong type, shape or a NaN is never rescued by the tolerance below
        off = ((got.double() - expected.double()).abs() > 1e-3).double().mean().item()
        return Verdict(True) if off <= 0.002 else v

    describe = (
        f"8 MNIST images, {'pretrained' if arch == 'tiny_mlp' else 'fresh'} {arch}, "
        f"eps_inf=0.2, eps_2=2.0, weight={weight}, steps={steps}, step_a=0.05, "
        f"step_b=0.5"
    )
    return Case(name, [Call(args)], judge, describe, points, hidden)


def _attack_cases():
    return [
        _attack_case("weight 0.5, 6 steps", "tiny_mlp", 0.5, 6, 1300, points=2.0),
        _attack_case(
            "hidden: a convolutional model, weight 0.3", "tiny_cnn", 0.3, 6, 1400, hidden=True
        ),
    ]


EXERCISE = Exercise(
    name="ex6",
    title="Affine combinations of two threat models",
    notebook="ex6_affine.ipynb",
    questions=[
        Question(
            "ex6.affine_project",
            "affine_project",
            "Projecting onto the affine set",
            "part a: clamp to +-weight*eps_inf, then keep x + delta_a in [0, 1]; part b: "
            "scale onto the l_2 ball of radius (1 - weight)*eps_2, then keep "
            "x + delta_a + delta_b in [0, 1]",
            _project_cases,
        ),
        Question(
            "ex6.affine_step",
            "affine_step",
            "One alternating step",
            "even t: delta_a + step_a*sign(grad); odd t: delta_b + step_b*grad/||grad||_2 "
            "per example; the other part does not move",
            _step_cases,
        ),
        Question(
            "ex6.affine_attack",
            "affine_attack",
            "The affine attack",
            "start from two zero parts; at step t take the gradient at x + delta_a + "
            "delta_b, apply affine_step with t, then affine_project",
            _attack_cases,
        ),
    ],
)
