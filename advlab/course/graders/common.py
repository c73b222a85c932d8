"""Helpers shared by the exercise graders: inputs, reference pieces and summaries."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..codec import ModelArg
from ..data import mnist_subset
from ..nets import make_net, pretrained_tiny
from ..spec import Verdict, close_verdict, shape_verdict


def images(n: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` MNIST test images starting at ``offset`` and their labels."""
    return mnist_subset(n, train=False, offset=offset)


def model_arg(arch: str = "tiny_mlp", trained: bool = True, seed: int = 0) -> ModelArg:
    """A model input: a pretrained (or freshly initialised) tiny net."""
    net = pretrained_tiny(arch, seed=seed) if trained else make_net(arch, seed)
    return ModelArg(arch, {k: v.clone() for k, v in net.state_dict().items()})


def live_model(arg: ModelArg) -> torch.nn.Module:
    """The net a :class:`ModelArg` describes, rebuilt in this (the grader's) process."""
    net = make_net(arg.arch)
    net.load_state_dict(arg.state)
    return net.eval()


def input_grad(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy with respect to the input."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return g


def mean_loss(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy of ``model`` on ``(x, y)``."""
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``x`` classified as ``y``."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def perturbation_summary(x: torch.Tensor):
    """A summary function for attack outputs: norms of ``x_adv - x``, never pixel values."""

    def summary(x_adv: torch.Tensor) -> str:
        d = (x_adv.detach().double() - x.double()).flatten(1)
        return (
            f"shape {tuple(x_adv.shape)}, max |x_adv - x| = {d.abs().max().item():.4g}, "
            f"mean l_2 norm of x_adv - x = {d.norm(dim=1).mean().item():.4g}, "
            f"{(d != 0).double().mean().item():.1%} of pixels changed, values in "
            f"[{x_adv.min().item():.3g}, {x_adv.max().item():.3g}]"
        )

    return summary


def attack_close(x: torch.Tensor, expected: torch.Tensor, max_frac: float = 0.0, atol=1e-5):
    """A judge: the returned adversarial batch matches ``expected`` (up to ``max_frac`` pixels)."""

    def judge(outcomes) -> Verdict:
        got = outcomes[0].value
        v = close_verdict(
            got, expected, atol=atol, summary=perturbation_summary(x), what="an adversarial batch"
        )
        if v.passed or max_frac <= 0 or shape_verdict(got, tuple(expected.shape)) is not None:
            return v
        off = ((got.double() - expected.double()).abs() > atol + 1e-4).double().mean().item()
        return Verdict(True) if off <= max_frac else v

    return judge


def in_box_verdict(x: torch.Tensor, x_adv, shape) -> Verdict | None:
    """Fail unless ``x_adv`` is a finite tensor of ``shape`` with values in [0, 1]."""
    bad = shape_verdict(x_adv, shape, "an adversarial batch")
    if bad is not None:
        return bad
    if x_adv.min().item() < -1e-6 or x_adv.max().item() > 1 + 1e-6:
        return Verdict(
            False,
            "pixel values in [0, 1]",
            f"values in [{x_adv.min().item():.3g}, {x_adv.max().item():.3g}]",
            "clip the adversarial image to the valid pixel range",
        )
    return None


def in_ball_verdict(x: torch.Tensor, x_adv, eps: float) -> Verdict | None:
    """Fail unless ``x_adv`` passes :func:`in_box_verdict` and max |x_adv - x| <= ``eps``
    (up to 1e-5); x, x_adv (N, C, H, W)."""
    bad = in_box_verdict(x, x_adv, tuple(x.shape))
    if bad is not None:
        return bad
    linf = (x_adv.double() - x.double()).abs().max().item()
    if linf > eps + 1e-5:
        return Verdict(False, f"max |x_adv - x| <= eps = {eps}", f"{linf:.4g}")
    return None
