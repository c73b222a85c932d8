"""Exercise 5: gradient masking. Detect it, then break it with BPDA and a gradient-free attack.

The masked model rounds every pixel to 0 or 1 before a normal classifier
(:class:`advlab.course.nets.Rounded`): its input gradient is exactly zero, so PGD stalls although
the model is not robust. BPDA (Athalye et al., 2018) differentiates through the rounding as if it
were the identity; a gradient-free random search needs no gradient at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..codec import GeneratorArg, ModelArg
from ..spec import Call, Case, Exercise, Question, Verdict, close_verdict, number_verdict
from .common import (
    accuracy,
    attack_close,
    images,
    in_ball_verdict,
    input_grad,
    live_model,
    model_arg,
)

# ---------------------------------------------------------------------------------------------
# The grader's reference answers


def ref_zero_gradient_fraction(model, x, y):
    """Fraction of examples whose input gradient of the loss is exactly zero."""
    g = input_grad(model, x, y)
    return (g.flatten(1).abs().amax(dim=1) == 0).double().mean().item()


def ref_bpda_grad(base, x, y):
    """Gradient of the loss of base(round(x)), with round's derivative replaced by 1."""
    return input_grad(base, torch.round(x), y)


def ref_bpda_pgd(base, x, y, eps, step_size, steps):
    """l_inf PGD (no random start) against base(round(.)) with BPDA gradients."""
    x_adv = x.clone()
    for _ in range(steps):
        x_adv = x_adv + step_size * ref_bpda_grad(base, x_adv, y).sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv


def ref_random_search(model, x, y, eps, queries, generator=None):
    """Try random corners of the l_inf ball; keep, per example, the one with the highest loss."""
    best, best_loss = x.clone(), torch.full((len(x),), -float("inf"))
    for _ in range(queries):
        signs = torch.randint(0, 2, x.shape, generator=generator).to(x.dtype) * 2 - 1
        x_try = (x + eps * signs).clamp(0, 1)
        with torch.no_grad():
            loss = F.cross_entropy(model(x_try), y, reduction="none")
        better = loss > best_loss
        best[better], best_loss = x_try[better], torch.where(better, loss, best_loss)
    return best


# ---------------------------------------------------------------------------------------------
# Cases


def _masked(arch: str) -> ModelArg:
    base = model_arg(arch, trained=arch == "tiny_mlp")
    state = {f"base.{k}": v for k, v in base.state.items()}
    return ModelArg(f"rounded_{arch.split('_')[1]}", state)


def _zero_case(name, m, describe, hidden=False):
    x, y = images(32, 2000)
    expected = ref_zero_gradient_fraction(live_model(m), x, y)

    def judge(outcomes):
        return number_verdict(outcomes[0].value, expected, 1e-9, "the fraction of zero gradients")

    return Case(name, [Call((m, x, y))], judge, describe, 1.0, hidden)


def _zero_cases():
    return [
        _zero_case(
            "the rounding model",
            _masked("tiny_mlp"),
            "32 MNIST images, the pretrained TinyMLP behind torch.round",
        ),
        _zero_case(
            "the undefended model",
            model_arg("tiny_mlp"),
            "32 MNIST images, the pretrained TinyMLP itself",
        ),
        _zero_case(
            "hidden: a rounding CNN",
            _masked("tiny_cnn"),
            "32 MNIST images, a fresh TinyCNN behind torch.round",
            hidden=True,
        ),
    ]


def _grad_summary(g: torch.Tensor) -> str:
    n = g.flatten(1).norm(dim=1)
    return (
        f"shape {tuple(g.shape)}, l_2 norms per example from {n.min().item():.3g} to "
        f"{n.max().item():.3g}, {(g == 0).double().mean().item():.1%} zero entries"
    )


def _bpda_grad_case(name, arch, offset, hidden=False):
    m = model_arg(arch, trained=arch == "tiny_mlp")
    x, y = images(16, offset)
    expected = ref_bpda_grad(live_model(m), x, y)

    def judge(outcomes):
        return close_verdict(
            outcomes[0].value,
            expected,
            atol=1e-6,
            rtol=1e-4,
            summary=_grad_summary,
            what="a gradient",
        )

    describe = f"base = {'pretrained' if arch == 'tiny_mlp' else 'fresh'} {arch}, 16 MNIST images"
    return Case(name, [Call((m, x, y))], judge, describe, 1.0, hidden)


def _bpda_grad_cases():
    return [
        _bpda_grad_case("16 images", "tiny_mlp", 2100),
        _bpda_grad_case("16 other images", "tiny_mlp", 2116),
        _bpda_grad_case("hidden: a convolutional base", "tiny_cnn", 2132, hidden=True),
    ]


def _bpda_pgd_case(name, arch, offset, steps, hidden=False, points=1.0):
    m = model_arg(arch, trained=arch == "tiny_mlp")
    x, y = images(16, offset)
    eps, alpha = 0.3, 0.075
    expected = ref_bpda_pgd(live_model(m), x, y, eps, alpha, steps)
    describe = f"base = {arch}, 16 MNIST images, eps={eps}, step_size={alpha}, steps={steps}"
    return Case(
        name,
        [Call((m, x, y, eps, alpha, steps))],
        attack_close(x, expected, max_frac=0.002),
        describe,
        points,
        hidden,
    )


def _bpda_pgd_cases():
    return [
        _bpda_pgd_case("5 steps", "tiny_mlp", 2200, 5),
        _bpda_pgd_case("10 steps", "tiny_mlp", 2216, 10),
        _bpda_pgd_case("hidden: a convolutional base", "tiny_cnn", 2232, 5, hidden=True),
    ]


def _random_search_valid(x, eps):
    """A judge: every output in the ball and the box; other seeds give other results, the same
    seed the same."""

    def judge_valid(outcomes):
        outs = [o.value for o in outcomes]
        for out in outs:
            bad = in_ball_verdict(x, out, eps)
            if bad is not None:
                return bad
        if torch.equal(outs[0], outs[1]):
            return Verdict(
                False,
                "different results for different generators",
                "identical results",
                "draw the random signs with `generator=`",
            )
        if not torch.equal(outs[0], outs[2]):
            return Verdict(
                False,
                "the same result for the same seed",
                "different results",
                "draw all randomness from `generator`",
            )
        return Verdict(True)

    return judge_valid


def _random_search_strong(model, x, y, eps, ref_acc):
    """A judge: a valid output that leaves the model at most 10 points above the reference's
    accuracy ``ref_acc``."""

    def judge_strong(outcomes):
        out = outcomes[0].value
        bad = in_ball_verdict(x, out, eps)  # a NaN or out-of-ball batch is not strong
        if bad is not None:
            return bad
        acc = accuracy(model, out, y)
        if acc > ref_acc + 0.1:
            return Verdict(
                False,
                f"the rounding model's accuracy at most {ref_acc + 0.1:.1%}",
                f"{acc:.1%}",
                "keep, per example, the candidate with the highest loss",
            )
        return Verdict(True)

    return judge_strong


def _random_search_cases():
    m = _masked("tiny_mlp")
    x, y = images(64, 2300)
    eps, queries = 0.3, 40
    model = live_model(m)
    ref_acc = accuracy(
        model, ref_random_search(model, x, y, eps, queries, torch.Generator().manual_seed(0)), y
    )
    calls = [Call((m, x, y, eps, queries), {"generator": GeneratorArg(s)}) for s in (1, 2, 1)]
    judge_valid = _random_search_valid(x, eps)
    judge_strong = _random_search_strong(model, x, y, eps, ref_acc)
    describe = (
        f"the rounding TinyMLP, 64 MNIST images, eps={eps}, queries={queries}, "
        f"generators seeded 1, 2 and 1 again"
    )
    strong = Call((m, x, y, eps, queries), {"generator": GeneratorArg(7)})
    return [
        Case("stays in the ball, seeded", calls, judge_valid, describe, 1.5),
        Case(
            "as strong as it should be",
            [strong],
            judge_strong,
            f"the rounding TinyMLP, 64 MNIST images, eps={eps}, queries={queries}",
            1.5,
        ),
        Case(
            "hidden: reproducible with another seed",
            calls[:1] * 2 + calls[1:2],
            lambda outs: judge_valid([outs[0], outs[2], outs[1]]),
            describe,
            1.0,
            True,
        ),
    ]


EXERCISE = Exercise(
    name="ex5",
    title="Gradient masking: detect it, break it",
    notebook="ex5_gradient_masking.ipynb",
    questions=[
        Question(
            "ex5.zero_gradient_fraction",
            "zero_gradient_fraction",
            "Diagnose: vanishing gradients",
            "take the gradient of the mean cross-entropy with respect to x and count the "
            "examples whose gradient is zero in every entry",
            _zero_cases,
        ),
        Question(
            "ex5.bpda_grad",
            "bpda_grad",
            "BPDA: a straight-through gradient",
            "evaluate base on torch.round(x) and differentiate with respect to the rounded "
            "image: that is the gradient with d round(x)/dx replaced by 1",
            _bpda_grad_cases,
        ),
        Question(
            "ex5.bpda_pgd",
            "bpda_pgd",
            "Break it with BPDA",
            "l_inf PGD from x (no random start): step by step_size * sign(bpda_grad), then "
            "project onto the eps-ball and [0, 1]",
            _bpda_pgd_cases,
        ),
        Question(
            "ex5.random_search",
            "random_search",
            "Break it without gradients",
            "each query: random signs s in {-1, +1} (torch.randint with the generator), "
            "x_try = clip(x + eps * s, 0, 1); keep per example the x_try with the highest "
            "loss so far",
            _random_search_cases,
        ),
    ],
)
