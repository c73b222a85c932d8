"""Exercise 1: FGSM, targeted FGSM and PGD (l_inf) with a random start."""

from __future__ import annotations

import torch

from ..codec import GeneratorArg
from ..spec import Call, Case, Exercise, Question, Verdict
from .common import (
    attack_close,
    images,
    in_box_verdict,
    input_grad,
    live_model,
    mean_loss,
    model_arg,
    perturbation_summary,
)

# ---------------------------------------------------------------------------------------------
# The grader's reference answers


def ref_fgsm(model, x, y, eps):
    """Untargeted FGSM: one signed-gradient step up the loss, clipped to [0, 1]."""
    return (x + eps * input_grad(model, x, y).sign()).clamp(0, 1)


def ref_targeted_fgsm(model, x, target, eps):
    """Targeted FGSM: one signed-gradient step down the loss of the target class."""
    return (x - eps * input_grad(model, x, target).sign()).clamp(0, 1)


def ref_pgd_linf(model, x, y, eps, step_size, steps, random_start=True, generator=None):
    """PGD in the l_inf ball intersected with [0, 1]."""
    x_adv = x.clone()
    if random_start:
        noise = torch.rand(x.shape, generator=generator) * 2 * eps - eps
        x_adv = (x + noise).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv + step_size * input_grad(model, x_adv, y).sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv


# ---------------------------------------------------------------------------------------------
# Cases


def _attack_case(name, ref, arch, n, offset, eps, describe, points=1.0, hidden=False, **kw):
    m = model_arg(arch, trained=arch == "tiny_mlp")
    x, y = images(n, offset)
    if kw.get("target"):
        y = (y + 1 + torch.arange(n) % 9) % 10  # a target different from the true label
    expected = ref(live_model(m), x, y, eps)
    return Case(name, [Call((m, x, y, eps))], attack_close(x, expected), describe, points, hidden)


def _fgsm_cases():
    return [
        _attack_case(
            "untargeted, eps=0.1",
            ref_fgsm,
            "tiny_mlp",
            8,
            0,
            0.1,
            "8 MNIST test images, pretrained TinyMLP, eps=0.1",
        ),
        _attack_case(
            "untargeted, eps=0.3 (clipping matters)",
            ref_fgsm,
            "tiny_mlp",
            8,
            8,
            0.3,
            "8 MNIST test images, pretrained TinyMLP, eps=0.3",
        ),
        _attack_case(
            "hidden: a convolutional model",
            ref_fgsm,
            "tiny_cnn",
            16,
            100,
            0.2,
            "16 MNIST test images, randomly initialised TinyCNN, eps=0.2",
            hidden=True,
        ),
    ]


def _targeted_cases():
    return [
        _attack_case(
            "targeted, eps=0.1",
            ref_targeted_fgsm,
            "tiny_mlp",
            8,
            0,
            0.1,
            "8 MNIST test images, pretrained TinyMLP, targets != labels, eps=0.1",
            target=True,
        ),
        _attack_case(
            "targeted, eps=0.25",
            ref_targeted_fgsm,
            "tiny_mlp",
            8,
            16,
            0.25,
            "8 MNIST test images, pretrained TinyMLP, targets != labels, eps=0.25",
            target=True,
        ),
        _attack_case(
            "hidden: a convolutional model",
            ref_targeted_fgsm,
            "tiny_cnn",
            16,
            200,
            0.2,
            "16 MNIST test images, randomly initialised TinyCNN, eps=0.2",
            hidden=True,
            target=True,
        ),
    ]


def _pgd_exact_case(name, arch, offset, steps, hidden=False):
    m = model_arg(arch, trained=arch == "tiny_mlp")
    x, y = images(8, offset)
    eps, alpha = 0.1, 0.025
    expected = ref_pgd_linf(live_model(m), x, y, eps, alpha, steps, random_start=False)
    call = Call((m, x, y, eps, alpha, steps), {"random_start": False})
    describe = (
        f"8 MNIST test images, {arch}, eps={eps}, step_size={alpha}, "
        f"steps={steps}, random_start=False"
    )
    # a few pixels may legitimately differ where a gradient entry is ~0 and its sign flips
    return Case(name, [call], attack_close(x, expected, max_frac=0.002), describe, 1.0, hidden)


def _pgd_random_start_judge(m, x, y, eps, ref_loss):
    """A judge: every output in the box and the eps-ball, other seeds give other results, the
    same seed the same, and the loss at least 80% of the reference's ``ref_loss``."""

    def judge(outcomes):
        outs = [o.value for o in outcomes]
        for out in outs:
            bad = in_box_verdict(x, out, tuple(x.shape))
            if bad is not None:
                return bad
        linf = max((o.double() - x.double()).abs().max().item() for o in outs)
        if linf > eps + 1e-5:
            return Verdict(
                False,
                f"max |x_adv - x| <= eps = {eps}",
                f"{linf:.4g}",
                "project back onto the eps-ball after every step",
            )
        if torch.equal(outs[0], outs[1]):
            return Verdict(
                False,
                "different results for different generators",
                "identical results",
                "draw the random start with `generator=`",
            )
        if not torch.allclose(outs[0], outs[2], atol=1e-5):
            return Verdict(
                False,
                "the same result for two generators with the same seed",
                "different results",
                "draw all randomness from the `generator` argument",
            )
        loss = mean_loss(live_model(m), outs[0], y)
        if loss < 0.8 * ref_loss:
            return Verdict(
                False,
                f"a mean loss at x_adv of at least {0.8 * ref_loss:.3g}",
                f"{loss:.3g}",
                "your attack is much weaker than it should be",
            )
        return Verdict(True)

    return judge


def _pgd_random_start_case():
    m = model_arg("tiny_mlp")
    x, y = images(32, 40)
    eps, alpha, steps = 0.15, 0.04, 10
    ref_loss = mean_loss(
        live_model(m),
        ref_pgd_linf(
            live_model(m), x, y, eps, alpha, steps, generator=torch.Generator().manual_seed(0)
        ),
        y,
    )
    calls = [
        Call((m, x, y, eps, alpha, steps), {"random_start": True, "generator": GeneratorArg(s)})
        for s in (1, 2, 1)
    ]

    judge = _pgd_random_start_judge(m, x, y, eps, ref_loss)
    describe = (
        f"32 MNIST test images, pretrained TinyMLP, eps={eps}, step_size={alpha}, "
        f"steps={steps}, random_start=True, generators seeded 1, 2 and 1 again"
    )
    return Case("random start: in the ball, seeded, strong", calls, judge, describe, 2.0)


def _pgd_cases():
    return [
        _pgd_exact_case("no random start, 5 steps", "tiny_mlp", 0, 5),
        _pgd_random_start_case(),
        _pgd_exact_case("hidden: a convolutional model, 10 steps", "tiny_cnn", 300, 10, True),
    ]


EXERCISE = Exercise(
    name="ex1",
    title="FGSM, targeted FGSM and PGD",
    notebook="ex1_fgsm_pgd.ipynb",
    questions=[
        Question(
            "ex1.fgsm",
            "fgsm",
            "FGSM",
            "move every pixel by eps in the direction of the sign of the loss gradient, "
            "then clip to [0, 1]",
            _fgsm_cases,
        ),
        Question(
            "ex1.targeted_fgsm",
            "targeted_fgsm",
            "Targeted FGSM",
            "a targeted attack makes the target class *more* likely: which way does that "
            "move along the gradient of the loss of the target?",
            _targeted_cases,
        ),
        Question(
            "ex1.pgd_linf",
            "pgd_linf",
            "PGD (l_inf) with a random start",
            "after each signed-gradient step, project onto the eps-ball around x and onto "
            "[0, 1]; draw the random start with torch.rand(..., generator=generator)",
            _pgd_cases,
        ),
    ],
)

_ = perturbation_summary  # re-exported for notebooks that want the same summaries
