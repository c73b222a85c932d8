"""A deliberately gradient-masked model, for teaching and tests, and its remedy BPDA.

``masked_model(model)`` puts an input quantisation in front of a model: every pixel is rounded to
one of ``levels`` grey levels. Rounding is flat almost everywhere, so the input gradient is zero
and gradient attacks (FGSM, PGD, APGD) go nowhere: PGD reports a high "robust" accuracy. The
model is not robust: a perturbation of l_inf size 0.3 still moves each pixel by several levels,
and the network behind the quantiser is an ordinary, non-robust one. This is the "shattered
gradients" of Athalye, Carlini & Wagner (2018); input quantisation and thermometer encoding
(Buckman et al. 2018) fell to it.

The remedy is BPDA, Backward Pass Differentiable Approximation (Athalye et al. 2018): run the
true forward pass, but differentiate through a smooth approximation of the masking layer; for a
quantiser (round(x) ~ x) that is the straight-through estimator, forward q(x), backward identity.
``bpda(model)`` returns a copy of the model whose quantisers do exactly that. Attack the BPDA copy
and evaluate the adversarial inputs on the original: its forward pass is the same function, so
the adversarial examples are real.

The l_inf-trained MNIST models of Tramer & Boneh (2019) learn something similar on their own:
first-layer filters that threshold the pixels, which masks the gradients of l_1 and l_2 attacks
(see ``advlab.notebook.viz``). With ``levels=2`` the quantiser is exactly such a threshold at 0.5.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Quantize", "masked_model", "bpda", "has_masking_layers", "BPDA"]


class Quantize(nn.Module):
    """Round each value in [0, 1] to the nearest of ``levels`` evenly spaced levels.

    Input and output (B, C, H, W) in [0, 1]. The forward pass is the same in both modes; with
    ``straight_through=True`` the backward pass is the identity (BPDA) instead of zero.
    """

    def __init__(self, levels: int = 16, straight_through: bool = False):
        super().__init__()
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        self.levels = int(levels)
        self.straight_through = bool(straight_through)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.levels - 1
        q = torch.round(x * n) / n
        if self.straight_through:
            return x + (q - x).detach()  # value q(x), gradient of the identity
        return q

    def extra_repr(self) -> str:
        return f"levels={self.levels}, straight_through={self.straight_through}"


def masked_model(model: nn.Module, levels: int = 16) -> nn.Sequential:
    """``Sequential(Quantize(levels), model)``: the same classifier with zero input gradients.

    The model's parameters are shared, not copied; the result is in ``model``'s mode. Its clean
    accuracy is close to the model's (MNIST survives 16 grey levels easily).
    """
    out = nn.Sequential(Quantize(levels), model)
    return out.train(model.training)


def has_masking_layers(model: nn.Module) -> bool:
    """Whether ``model`` contains a layer with a straight-through mode (e.g. ``Quantize``)."""
    return any(hasattr(m, "straight_through") for m in model.modules())


def bpda(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose masking layers use the straight-through gradient (BPDA).

    The forward pass is unchanged, so ``bpda(m)(x) == m(x)``; only input gradients differ. The
    copy shares nothing with ``model`` (deep copy) and stays in the same device and mode. Any
    layer with a ``straight_through`` attribute is switched; raises if there is none.
    """
    if not has_masking_layers(model):
        raise ValueError(
            "no layer with a straight-through mode found; BPDA needs to know which layer is "
            "non-differentiable (e.g. advlab.masking.Quantize)"
        )
    out = copy.deepcopy(model)
    for m in out.modules():
        if hasattr(m, "straight_through"):
            m.straight_through = True
    return out


@dataclass(frozen=True)
class BPDA:
    """Run ``attack`` on ``bpda(model)``: ``BPDA(PGD(Linf(0.3)))`` plugs into ``evaluate_union``.

    The evaluator re-checks every adversarial input on the true model, so this is safe to mix with
    other attacks. On a model without masking layers the attack runs on the model itself.
    """

    attack: object

    @property
    def threat(self):
        return getattr(self.attack, "threat", None)

    def __call__(self, model, x, y, generator=None):
        target = bpda(model) if has_masking_layers(model) else model
        if generator is None:
            return self.attack(target, x, y)
        return self.attack(target, x, y, generator=generator)
