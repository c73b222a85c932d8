"""Exercise 2: the l_2 step and projection, the exact l_1-ball projection and the SLIDE step."""

from __future__ import annotations

import torch

from ...threats import L1, L2
from ..spec import Call, Case, Exercise, Question, Verdict, close_verdict, shape_verdict
from .common import images

# ---------------------------------------------------------------------------------------------
# The grader's reference answers


def _norms(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def ref_l2_step(delta, grad, step_size):
    """delta + step_size * grad / ||grad||_2 per example (no step where grad is zero): the
    library's own l_2 steepest-ascent step (``L2.direction``, no norm floor)."""
    return L2().step(delta, grad, step_size)


def ref_l2_project(delta, eps):
    """Scale each example with ||delta||_2 > eps back onto the sphere of radius eps."""
    n = _norms(delta)
    return delta * torch.where(n > eps, eps / n.clamp_min(1e-12), torch.ones_like(n))


def ref_l1_project(v, eps):
    """Exact Euclidean projection of each row of v (B, D) onto the l_1 ball (Duchi et al.)."""
    a = v.abs()
    u, _ = a.sort(dim=1, descending=True)
    css = u.cumsum(dim=1)
    j = torch.arange(1, v.shape[1] + 1, dtype=v.dtype)
    rho = ((u * j > css - eps) * j).amax(dim=1).clamp_min(1).long()
    theta = ((css.gather(1, rho[:, None] - 1) - eps) / rho[:, None]).clamp_min(0)
    w = v.sign() * (a - theta).clamp_min(0)
    return torch.where((a.sum(dim=1) > eps)[:, None], w, v)


def ref_slide_step(delta, grad, step_size, q, x):
    """SLIDE: equal steps on the coordinates with the largest |grad| that can still move (the
    q-th percentile and up): the library's own ``L1(q=q).step``."""
    return L1(q=q).step(delta, grad, step_size, x)


# ---------------------------------------------------------------------------------------------
# Inputs


def _randn(shape, seed, scale=1.0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale


def _norm_summary(t: torch.Tensor) -> str:
    n = t.flatten(1).norm(dim=1)
    return (
        f"shape {tuple(t.shape)}, l_2 norms per example from {n.min().item():.4g} to "
        f"{n.max().item():.4g}"
    )


def _l1_summary(t: torch.Tensor) -> str:
    n = t.flatten(1).abs().sum(dim=1)
    nz = (t != 0).double().mean().item()
    return (
        f"shape {tuple(t.shape)}, l_1 norms per row from {n.min().item():.4g} to "
        f"{n.max().item():.4g}, {nz:.1%} nonzero entries"
    )


def _tensor_case(name, call, expected, describe, summary, hidden=False, atol=1e-5, points=1.0):
    def judge(outcomes):
        return close_verdict(outcomes[0].value, expected, atol=atol, summary=summary)

    return Case(name, [call], judge, describe, points, hidden)


def _l2_step_cases():
    d, g = _randn((6, 1, 28, 28), 1, 0.1), _randn((6, 1, 28, 28), 2)
    g0 = g.clone()
    g0[2] = 0
    d2, g2 = _randn((5, 3, 4, 4), 3), _randn((5, 3, 4, 4), 4, 1e-3)
    return [
        _tensor_case(
            "6 random images",
            Call((d, g, 0.5)),
            ref_l2_step(d, g, 0.5),
            "delta, grad: 6 random (1, 28, 28) tensors, step_size=0.5",
            _norm_summary,
        ),
        _tensor_case(
            "a zero gradient",
            Call((d, g0, 0.5)),
            ref_l2_step(d, g0, 0.5),
            "as before, but example 2 has an all-zero gradient (it must not move, "
            "and nothing may become NaN)",
            _norm_summary,
        ),
        _tensor_case(
            "hidden: other shapes, tiny gradients",
            Call((d2, g2, 1.0)),
            ref_l2_step(d2, g2, 1.0),
            "5 random (3, 4, 4) tensors, |grad| ~ 1e-3",
            _norm_summary,
            hidden=True,
        ),
    ]


def _l2_project_cases():
    d = _randn((8, 1, 28, 28), 5) * torch.linspace(0.01, 0.2, 8).view(-1, 1, 1, 1)
    d0 = d.clone()
    d0[0] = 0
    d3 = _randn((4, 3, 8, 8), 6, 2.0)
    return [
        _tensor_case(
            "some inside, some outside",
            Call((d, 2.0)),
            ref_l2_project(d, 2.0),
            "8 random (1, 28, 28) perturbations with l_2 norms from 0.28 to 5.6, eps=2.0",
            _norm_summary,
        ),
        _tensor_case(
            "a zero perturbation",
            Call((d0, 1.0)),
            ref_l2_project(d0, 1.0),
            "as before with example 0 all zeros, eps=1.0",
            _norm_summary,
        ),
        _tensor_case(
            "hidden: other shapes",
            Call((d3, 3.0)),
            ref_l2_project(d3, 3.0),
            "4 random (3, 8, 8) perturbations, eps=3.0",
            _norm_summary,
            hidden=True,
        ),
    ]


def _l1_judge(v, eps, expected):
    def judge(outcomes):
        got = outcomes[0].value
        bad = shape_verdict(got, tuple(v.shape), "a projected tensor")
        if bad is not None:
            return bad
        norms = got.double().abs().sum(dim=1)
        if (norms > eps + 1e-4).any():
            return Verdict(
                False,
                f"every row with l_1 norm <= eps = {eps}",
                f"largest l_1 norm {norms.max().item():.4g}",
                "the projection must land inside the ball",
            )
        return close_verdict(got, expected, atol=1e-5, summary=_l1_summary)

    return judge


def _l1_case(name, v, eps, describe, hidden=False):
    expected = ref_l1_project(v, eps)
    return Case(name, [Call((v, eps))], _l1_judge(v, eps, expected), describe, 1.0, hidden)


def _l1_cases():
    small = torch.tensor([[3.0, -1.0, 0.5, 0.0], [0.2, 0.1, -0.3, 0.1]])
    v = _randn((16, 784), 7, 0.05)
    v[:4] *= 0.01  # a few rows already inside the ball
    ties = torch.tensor(
        [[1.0, 1.0, 1.0, -1.0, 0.5], [-2.0, 2.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5, 0.5]]
    )
    x, _ = images(6, 500)
    return [
        _l1_case(
            "two small rows",
            small,
            2.0,
            "v = [[3, -1, 0.5, 0], [0.2, 0.1, -0.3, 0.1]], eps=2 (row 1 is inside)",
        ),
        _l1_case(
            "16 random rows of length 784",
            v,
            10.0,
            "16 random rows (4 of them already inside the ball), eps=10",
        ),
        _l1_case(
            "hidden: ties and sign changes",
            ties,
            1.5,
            "3 rows with repeated absolute values, eps=1.5",
            hidden=True,
        ),
        _l1_case(
            "hidden: MNIST images as rows",
            x.flatten(1),
            20.0,
            "6 MNIST images flattened to (6, 784), eps=20",
            hidden=True,
        ),
    ]


def _slide_cases():
    g = _randn((4, 1, 28, 28), 8)
    half = torch.full((4, 1, 28, 28), 0.5)
    zero = torch.zeros_like(half)
    x, _ = images(4, 600)
    g2 = _randn((4, 1, 28, 28), 9)
    d2 = _randn((4, 1, 28, 28), 10, 0.01)
    return [
        _tensor_case(
            "no pixel at the edge of [0, 1]",
            Call((zero, g, 1.0, 99.0, half)),
            ref_slide_step(zero, g, 1.0, 99.0, half),
            "x = 0.5 everywhere, delta = 0, a random gradient, step_size=1, q=99",
            _l1_summary,
        ),
        _tensor_case(
            "MNIST images: blocked pixels",
            Call((zero, g2, 2.0, 99.0, x)),
            ref_slide_step(zero, g2, 2.0, 99.0, x),
            "4 MNIST images (most pixels are exactly 0 or 1), delta = 0, a random "
            "gradient, step_size=2, q=99",
            _l1_summary,
        ),
        _tensor_case(
            "hidden: q=95, nonzero delta",
            Call((d2, g2, 1.5, 95.0, x)),
            ref_slide_step(d2, g2, 1.5, 95.0, x),
            "4 MNIST images, a small random delta, step_size=1.5, q=95",
            _l1_summary,
            hidden=True,
        ),
    ]


EXERCISE = Exercise(
    name="ex2",
    title="l_2 and l_1 steps and projections, SLIDE",
    notebook="ex2_projections_slide.ipynb",
    questions=[
        Question(
            "ex2.l2_step",
            "l2_step",
            "The l_2 step",
            "normalise each example's gradient by its own l_2 norm (flatten all but the "
            "batch dimension); guard the division for a zero gradient",
            _l2_step_cases,
        ),
        Question(
            "ex2.l2_project",
            "l2_project",
            "The l_2 projection",
            "only examples with norm > eps change, and they are scaled by eps / norm",
            _l2_project_cases,
        ),
        Question(
            "ex2.l1_project",
            "l1_project",
            "The exact l_1-ball projection",
            "sort |v| in decreasing order, find the largest rho with u_rho > (sum of the "
            "first rho - eps) / rho, soft-threshold by theta = (that sum - eps) / rho; rows "
            "already inside the ball stay as they are",
            _l1_cases,
        ),
        Question(
            "ex2.slide_step",
            "slide_step",
            "The SLIDE step",
            "zero the gradient where x + delta is at 0 and the gradient points down, or at "
            "1 and it points up; keep |g| >= the k-th smallest |g| (k = ceil(q/100 * D), "
            "torch.kthvalue) and |g| > 0; split step_size equally over the kept "
            "coordinates, each moving by the sign of g",
            _slide_cases,
        ),
    ],
)
