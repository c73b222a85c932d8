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

The checks run in the order of ``CHECKS``: ``MODEL_CHECKS`` look at the model itself, then the
attack under test runs and each of ``ATTACK_CHECKS`` holds another attack's accuracy against it.

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

__all__ = ["diagnose", "DiagnosisReport", "Check", "CHECKS", "MODEL_CHECKS", "ATTACK_CHECKS"]


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


class _Run:
    """One diagnosis under way: the model (frozen by the caller), the first n examples, and what
    the checks measured so far (``acc``: accuracies as fractions of n; ``robust``: who survives
    the attack under test; ``curve``: the accuracy-vs-eps curve)."""

    def __init__(self, model, x, y, threat, attack, gradient_free, steps, eps_factors,
                 noise_draws, tol, gen):
        self.model, self.x, self.y, self.threat = model, x, y, threat
        self.attack, self.gradient_free = attack, gradient_free
        self.steps = getattr(attack, "steps", steps)  # the attack under test's own steps
        self.eps_factors, self.noise_draws, self.tol, self.gen = eps_factors, noise_draws, tol, gen
        self.n = x.shape[0]
        with torch.no_grad():
            self.out1, self.out2 = model(x), model(x)
        self.clean = self.out1.argmax(1) == y
        self.acc = {"clean": self.clean.float().mean().item()}
        self.idx = self.clean.nonzero().squeeze(1)
        self.xc, self.yc = x[self.idx], y[self.idx]
        self.robust: torch.Tensor | None = None
        self.curve: list[tuple[float, float]] = []

    def accuracy(self, correct: torch.Tensor) -> float:
        return correct.sum().item() / self.n

    def survives(self, atk, th=None) -> torch.Tensor:
        """(n,) bool: clean-correct and still correct under ``atk`` (checked against ``th``,
        by default the threat under test)."""
        ok = torch.zeros(self.n, dtype=torch.bool, device=self.x.device)
        if self.idx.numel():
            ok[self.idx] = _correct_under(self.model, self.xc, self.yc, atk,
                                          self.threat if th is None else th)
        return ok

    def measure_attack(self) -> None:
        """Run the attack under test: what the attack checks hold their attacks against."""
        self.robust = self.survives(self.attack)
        self.acc["attack"] = self.accuracy(self.robust)

    def held_against_attack(self, name: str, correct: torch.Tensor) -> tuple[bool, str]:
        """Record ``name``'s accuracy; passed: it is not below the attack's by more than tol."""
        self.acc[name] = self.accuracy(correct)
        return self.acc[name] >= self.acc["attack"] - self.tol, _pct(self.acc[name])


# Each check: run -> (passed, evidence). The model checks come first; the attack checks run
# after the attack under test (``_Run.measure_attack``) and each holds another attack's
# accuracy against it.


def _logits(r: _Run) -> tuple[bool, str]:
    sums = r.out1.sum(1)
    probs = bool((r.out1 >= 0).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-3)
    return not probs, ("outputs are non-negative and sum to 1 (probabilities)" if probs else
                       f"outputs look like logits (range {r.out1.min().item():.3g} to "
                       f"{r.out1.max().item():.3g})")


def _deterministic(r: _Run) -> tuple[bool, str]:
    gap = (r.out1 - r.out2).abs().max().item()
    return gap <= 1e-5, f"two forward passes differ by at most {gap:.2g}"


def _gradients(r: _Run) -> tuple[bool, str]:
    xg = r.xc.clone().requires_grad_(True)
    loss = F.cross_entropy(r.model(xg), r.yc, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    zero = (grad.flatten(1).abs().amax(dim=1) == 0).float()
    frac = zero.mean().item() if zero.numel() else 0.0
    return frac <= 0.1, f"input gradient exactly zero on {_pct(frac)} of the correct examples"


def _single_step(r: _Run) -> tuple[bool, str]:
    """FGSM for l_inf: one steepest-ascent step of size eps from x."""
    one = PGD(r.threat, steps=1, step_size=r.threat.eps, random_start=False)
    passed, shown = r.held_against_attack("single-step", r.survives(one))
    return passed, f"one-step attack {shown} vs iterative {_pct(r.acc['attack'])}"


def _random_noise(r: _Run) -> tuple[bool, str]:
    noisy = r.clean.clone()
    with torch.no_grad():
        for _ in range(r.noise_draws):
            if r.idx.numel():
                noisy[r.idx] &= r.model(_noise(r.threat, r.xc, r.gen)).argmax(1) == r.yc
    passed, shown = r.held_against_attack("noise", noisy)
    return passed, f"random noise {shown} vs attack {_pct(r.acc['attack'])}"


def _more_iterations(r: _Run) -> tuple[bool, str]:
    strong = PGD(r.threat, steps=5 * r.steps, restarts=3)
    more = r.robust.clone()
    alive = r.robust.nonzero().squeeze(1)
    if alive.numel():
        more[alive] = _correct_under(r.model, r.x[alive], r.y[alive], strong, r.threat)
    passed, shown = r.held_against_attack("more-iterations", more)
    return passed, f"{5 * r.steps} steps x 3 restarts {shown} vs {_pct(r.acc['attack'])}"


def _gradient_free(r: _Run) -> tuple[bool, str]:
    passed, shown = r.held_against_attack("gradient-free", r.survives(r.gradient_free))
    return passed, f"gradient-free {shown} vs gradient attack {_pct(r.acc['attack'])}"


def _unbounded(r: _Run) -> tuple[bool, str]:
    r.curve = [(float(r.threat.eps), r.acc["attack"])]
    full = r.threat.diameter(r.x)
    budgets = [f * r.threat.eps for f in r.eps_factors if f * r.threat.eps < full] + [full]
    for e in budgets:
        big = r.threat.with_eps(e)
        r.curve.append((e, r.accuracy(r.survives(PGD(big, steps=r.steps), big))))
    return r.curve[-1][1] <= r.tol, "accuracy vs eps: " + ", ".join(
        f"{e:.3g}: {_pct(a)}" for e, a in r.curve)


#: the checks on the model itself, in the order they run: (name, measure, hint when it fails)
MODEL_CHECKS = (
    ("logits", _logits, "remove the final softmax: attacks need logits"),
    ("deterministic", _deterministic,
     "a randomised model needs EOT (average gradients over its randomness)"),
    ("gradients", _gradients,
     "zero gradients: a non-differentiable or saturating layer; try BPDA "
     "(advlab.masking.bpda) or a gradient-free attack"),
)
#: the checks held against the attack under test, in the order they run
ATTACK_CHECKS = (
    ("single-step", _single_step,
     "a single step beating the iterative attack means its steps are misled"),
    ("noise", _random_noise,
     "random noise beats the attack: the attack is not following the loss"),
    ("more-iterations", _more_iterations,
     "the attack had not converged: use more steps/restarts (or APGD)"),
    ("gradient-free", _gradient_free,
     "a gradient-free attack beating the gradient attack is the classic sign of "
     "gradient masking"),
    ("unbounded", _unbounded,
     "an attack with an unbounded budget must always succeed; it does not, so "
     "its gradients are not leading anywhere"),
)
#: every check's name, in the order of the report
CHECKS = tuple(name for name, _, _ in MODEL_CHECKS + ATTACK_CHECKS)


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
    attack = attack if attack is not None else PGD(threat, steps=steps)
    gradient_free = gradient_free if gradient_free is not None else Square(threat, queries)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    checks: list[Check] = []

    def run_checks(table):
        for name, measure, hint in table:
            check = Check(name, *measure(run), hint)
            checks.append(check)
            if verbose:
                print(f"[{check.verdict}] {check.name}: {check.evidence}", flush=True)

    with frozen(model):
        run = _Run(model, x, y, threat, attack, gradient_free, steps, eps_factors, noise_draws,
                   tol, gen)
        run_checks(MODEL_CHECKS)
        run.measure_attack()
        run_checks(ATTACK_CHECKS)
    return DiagnosisReport(threat, run.n, checks, run.acc, run.curve)
