"""Is a robust accuracy real, or is the attack being fooled? Checks for gradient masking.

``diagnose(model, (x, y), threat)`` attacks the model several ways and runs the sanity checks of
Carlini et al. (2019, "On evaluating adversarial robustness") and the flags AutoAttack raises
(Croce & Hein 2020). Each check gets a verdict, "ok" or "FLAG", with its evidence:

- logits: the model returns logits, not probabilities (a softmax output saturates and its
  gradients vanish);
- deterministic: two forward passes agree (randomness hides gradients; use EOT otherwise);
- gradients: the input gradient of the loss is non-zero on most examples;
- single-step: FGSM (one step of size eps) is not stronger than the iterative attack;
- noise: random noise of the same size is weaker than the attack;
- more-iterations: 5x the steps and 3 restarts do not find many more adversarial examples;
- gradient-free: a score-based Square Attack does not beat the gradient attack;
- unbounded: accuracy falls to ~0 as eps grows until the ball covers the whole [0, 1] box.

A FLAG means the reported robust accuracy cannot be trusted as it stands; no flag does not prove
robustness, it only means these known failure modes were not seen. Accuracies are over all n
examples (clean mistakes count as errors); attacks only run on correctly classified ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import PGD
from ..attacks.base import check_inputs, frozen
from ..attacks.square import Square
from ..threats import ThreatModel

__all__ = ["diagnose", "DiagnosisReport", "Check"]


@dataclass
class Check:
    """One check: ``passed`` True (ok), False (FLAG) or None (skipped), with its evidence."""

    name: str
    passed: bool | None
    evidence: str
    hint: str = ""

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "FLAG", None: "skipped"}[self.passed]


@dataclass
class DiagnosisReport:
    """The checks, the accuracies they measured (fractions of n) and the eps curve."""

    threat: ThreatModel
    n: int
    checks: list[Check]
    accuracies: dict[str, float] = field(default_factory=dict)
    eps_curve: list[tuple[float, float]] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        """Names of the failed checks."""
        return [c.name for c in self.checks if c.passed is False]

    @property
    def ok(self) -> bool:
        return not self.flags

    def __getitem__(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __str__(self) -> str:
        width = max(len(c.name) for c in self.checks) + 2
        lines = [f"Gradient-masking diagnosis: {self.threat!r} on n = {self.n} examples"]
        lines.append("  accuracies: " + ", ".join(
            f"{k} {100 * v:.1f}%" for k, v in self.accuracies.items()))
        for c in self.checks:
            lines.append(f"  [{c.verdict:^7}] {c.name:<{width}}{c.evidence}")
            if c.passed is False and c.hint:
                lines.append(f"  {'':9} {'':<{width}}-> {c.hint}")
        if self.flags:
            lines.append(f"VERDICT: {len(self.flags)} flag(s) ({', '.join(self.flags)}): the "
                         "gradient attack's robust accuracy is NOT trustworthy; report the "
                         "strongest attack's number and look for gradient masking.")
        else:
            lines.append("VERDICT: no flag. The known signs of gradient masking were not seen "
                         "(this does not prove robustness).")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows the report
        p.text(str(self))


def _correct_under(model, x, y, attack, threat=None):
    """(N,) bool: still correct on attack(model, x, y).x_adv (re-checked by our forward pass)."""
    res = attack(model, x, y)
    x_adv = res.x_adv.detach()
    if threat is not None:
        ok = threat.contains(x, x_adv)
        if not bool(ok.all()):
            raise RuntimeError(f"{attack!r} left the threat model on {int((~ok).sum())} inputs")
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


def _noise(threat, x, gen):
    """x plus random noise of the threat's full size (``threat.noise``: sign noise for l_inf, a
    random direction for l_2, eps spread over ceil(eps) random pixels for l_1), in [0, 1]."""
    return (x + threat.noise(x, generator=gen)).clamp(0, 1)


def _pct(a: float) -> str:
    return f"{100 * a:.1f}%"


def diagnose(
    model: nn.Module,
    data,
    threat: ThreatModel,
    attack: Callable | None = None,
    gradient_free: Callable | None = None,
    n: int = 200,
    steps: int = 20,
    queries: int = 1000,
    eps_factors: tuple[float, ...] = (2.0, 4.0),
    noise_draws: int = 10,
    tol: float = 0.05,
    seed: int = 0,
    verbose: bool = False,
) -> DiagnosisReport:
    """Run the gradient-masking checks on the first ``n`` examples of ``data``.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K); mode and requires_grad restored afterwards.
        data: a pair (x, y): x (N, C, H, W) in [0, 1], y (N,) labels, on the model's device.
        threat: ``Linf``, ``L2``, ``L1`` or any additive threat with ``noise`` and ``diameter``.
        attack: the gradient attack under test (default ``PGD(threat, steps)``).
        gradient_free: the score-based attack (default ``Square(threat, queries)``).
        eps_factors: budgets (times eps) for the accuracy-vs-eps curve; the budget that covers
            the whole box is always added last.
        noise_draws: random-noise draws per example (the example counts as fooled if any is).
        tol: the largest accuracy gap (fraction of n) that is not a flag.
        seed: seeds a local generator for the noise (the global RNG is untouched).
        verbose: print each check as it finishes.

    Returns:
        ``DiagnosisReport``: ``print(report)`` for the table, ``report.flags`` for failed checks.
    """
    if not (isinstance(threat, ThreatModel) and threat.additive):
        raise TypeError(f"diagnose checks additive threats such as Linf, L2 or L1, got {threat!r}")
    x, y = data
    x, y = x[:n], y[:n]
    check_inputs(model, x, y)
    n = x.shape[0]
    attack = attack if attack is not None else PGD(threat, steps=steps)
    gradient_free = gradient_free if gradient_free is not None else Square(threat, queries)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    checks: list[Check] = []
    acc: dict[str, float] = {}

    def add(check):
        checks.append(check)
        if verbose:
            print(f"[{check.verdict}] {check.name}: {check.evidence}", flush=True)

    with frozen(model):
        with torch.no_grad():
            out1, out2 = model(x), model(x)
        clean = out1.argmax(1) == y
        acc["clean"] = clean.float().mean().item()
        idx = clean.nonzero().squeeze(1)
        xc, yc = x[idx], y[idx]

        def accuracy(correct: torch.Tensor) -> float:
            return correct.sum().item() / n

        def survives(atk, th=threat) -> torch.Tensor:
            """(n,) bool: clean-correct and still correct under ``atk`` (checked against th)."""
            ok = torch.zeros(n, dtype=torch.bool, device=x.device)
            if idx.numel():
                ok[idx] = _correct_under(model, xc, yc, atk, th)
            return ok

        # 1. logits, not probabilities
        sums = out1.sum(1)
        probs = bool((out1 >= 0).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-3)
        add(Check("logits", not probs,
                  "outputs are non-negative and sum to 1 (probabilities)" if probs else
                  f"outputs look like logits (range {out1.min().item():.3g} to "
                  f"{out1.max().item():.3g})",
                  "remove the final softmax: attacks need logits"))

        # 2. deterministic
        gap = (out1 - out2).abs().max().item()
        add(Check("deterministic", gap <= 1e-5,
                  f"two forward passes differ by at most {gap:.2g}",
                  "a randomised model needs EOT (average gradients over its randomness)"))

        # 3. non-zero input gradients
        xg = xc.clone().requires_grad_(True)
        loss = F.cross_entropy(model(xg), yc, reduction="sum")
        (grad,) = torch.autograd.grad(loss, xg)
        zero = (grad.flatten(1).abs().amax(dim=1) == 0).float()
        frac = zero.mean().item() if zero.numel() else 0.0
        add(Check("gradients", frac <= 0.1,
                  f"input gradient exactly zero on {_pct(frac)} of the correct examples",
                  "zero gradients: a non-differentiable or saturating layer; try BPDA "
                  "(advlab.masking.bpda) or a gradient-free attack"))

        # the attack under test
        robust = survives(attack)
        acc["attack"] = accuracy(robust)
        alive = robust.nonzero().squeeze(1)

        # 4. single step (FGSM for l_inf: one steepest-ascent step of size eps from x)
        one = PGD(threat, steps=1, step_size=threat.eps, random_start=False)
        single = survives(one)
        acc["single-step"] = accuracy(single)
        add(Check("single-step", acc["single-step"] >= acc["attack"] - tol,
                  f"one-step attack {_pct(acc['single-step'])} vs iterative "
                  f"{_pct(acc['attack'])}",
                  "a single step beating the iterative attack means its steps are misled"))

        # 5. random noise of the same size
        noisy = clean.clone()
        with torch.no_grad():
            for _ in range(noise_draws):
                if idx.numel():
                    noisy[idx] &= model(_noise(threat, xc, gen)).argmax(1) == yc
        acc["noise"] = accuracy(noisy)
        add(Check("noise", acc["noise"] >= acc["attack"] - tol,
                  f"random noise {_pct(acc['noise'])} vs attack {_pct(acc['attack'])}",
                  "random noise beats the attack: the attack is not following the loss"))

        # 6. more steps and restarts
        steps0 = getattr(attack, "steps", steps)
        strong = PGD(threat, steps=5 * steps0, restarts=3)
        more = robust.clone()
        if alive.numel():
            more[alive] = _correct_under(model, x[alive], y[alive], strong, threat)
        acc["more-iterations"] = accuracy(more)
        add(Check("more-iterations", acc["more-iterations"] >= acc["attack"] - tol,
                  f"{5 * steps0} steps x 3 restarts {_pct(acc['more-iterations'])} vs "
                  f"{_pct(acc['attack'])}",
                  "the attack had not converged: use more steps/restarts (or APGD)"))

        # 7. gradient-free attack
        free = survives(gradient_free)
        acc["gradient-free"] = accuracy(free)
        add(Check("gradient-free", acc["gradient-free"] >= acc["attack"] - tol,
                  f"gradient-free {_pct(acc['gradient-free'])} vs gradient attack "
                  f"{_pct(acc['attack'])}",
                  "a gradient-free attack beating the gradient attack is the classic sign of "
                  "gradient masking"))

        # 8. unbounded budgets
        curve = [(float(threat.eps), acc["attack"])]
        full = threat.diameter(x)
        budgets = [f * threat.eps for f in eps_factors if f * threat.eps < full] + [full]
        for e in budgets:
            big = threat.with_eps(e)
            curve.append((e, accuracy(survives(PGD(big, steps=steps0), big))))
        last = curve[-1][1]
        add(Check("unbounded", last <= tol,
                  "accuracy vs eps: " + ", ".join(f"{e:.3g}: {_pct(a)}" for e, a in curve),
                  "an attack with an unbounded budget must always succeed; it does not, so "
                  "its gradients are not leading anywhere"))
    return DiagnosisReport(threat, n, checks, acc, curve)
