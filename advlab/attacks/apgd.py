"""Auto-PGD (Croce & Hein 2020) and its l_1 version l1-APGD (Croce & Hein 2021, "Mind the box").

APGD is PGD without a step size to tune. With iterate x_k, step size eta (per example) and
z = Proj_S(x_k + eta * steepest_ascent_S(grad)), it moves with momentum

    x_{k+1} = Proj_S(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1})),      a = 0.75 (a = 1 at k = 0)

and at checkpoints w_j = ceil(p_j N), p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03,
0.06), it halves eta and restarts from the best point x_max when the loss rose on fewer than
rho = 75% of the steps since the last checkpoint, or when neither eta nor the best loss changed
since then. eta starts at 2 eps for l_inf and l_2.

l1-APGD replaces the steepest-ascent step by a sparse one: among the coordinates the [0, 1] box
lets move in the gradient's direction, the k with the largest |grad| move by eta * eps / k each
(sign of the gradient), and every projection is the exact one onto the l_1 ball intersected with
the box (``project_l1_box``). The sparsity k adapts: it starts at 1% of the coordinates and at
each checkpoint becomes the number of coordinates that carry 90% of the l_1 mass of the best
perturbation so far, kept between ceil(eps) (a box-feasible perturbation of l_1 size eps in [0, 1]
touches at least that many coordinates) and 10% of the coordinates, so steps concentrate where
the solution lives. Sparse steps matter: on MNIST, steps over 10% of the pixels found a third as
many adversarial examples as steps over 1%. eta starts at 1 (a full-budget step).

A shrinking budget (``eps_scales``, AutoAttack's l_1 version: 3, 2, 1 x eps over 30%, 30% and
40% of the steps) lets the sparse l_1 steps first find where the mass should go in a larger ball;
each stage starts from the previous one's best point projected onto its own ball, and only the
last, at eps, counts. Appended to the strong l_1 stack it breaks images that every other attack
there leaves standing (``benchmarks/autoattack_vs_stored.py``).

``sparsity="l0"`` swaps that adaptation for AutoAttack's (``advlab.attacks.apgd_schedules``);
the strong l_1 stack runs both.

Losses: "ce", "margin" (Carlini & Wagner) or "dlr", the scale-invariant difference of logits ratio
-(z_y - max_{i != y} z_i) / (z_(1) - z_(3)), which does not vanish when the model saturates
its softmax (a classic source of gradient masking).

Targeted APGD (``apgd_targeted``, ``APGDT``; AutoAttack's APGD-T) runs APGD once per target class,
the k classes the model ranks highest after the true one on the clean input, with the targeted
DLR loss -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2). An untargeted loss follows the gradient
towards the runner-up class; when that class cannot be reached within the budget but another
can, only an attack aimed at the other class finds the adversarial example. Success still means
misclassified (any wrong class), as for every attack in an evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..threats import ThreatModel
from .apgd_schedules import checkpoints, gaussian_start, loss_and_grad, run_l0, stage_steps
from .base import (
    AttackResult,
    attack_session,
    best_of_restarts,
    better,
    check_logits,
    into_threat,
    misclassified,
    own_generator,
    per_example_loss,
    ranked_others,
)

__all__ = ["apgd", "APGD", "apgd_targeted", "APGDT", "dlr_loss", "dlr_targeted_loss", "checkpoints",
           "stage_steps", "check_scales", "check_sparsity"]


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) untargeted DLR loss (Croce & Hein 2020), higher is better for the attacker."""
    if logits.shape[1] < 3:
        raise ValueError("the DLR loss needs at least 3 classes; use loss='margin'")
    top, _ = logits.topk(3, dim=1)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
    return (others - z_y) / (top[:, 0] - top[:, 2] + 1e-12)


def dlr_targeted_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) targeted DLR loss -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2), higher is better.

    logits (B, K) with K >= 4, y and target (B,) int64 class indices (target != y). Positive
    when the target's logit beats the true one; invariant to shifting and scaling the logits.
    """
    if logits.shape[1] < 4:
        raise ValueError("the targeted DLR loss needs at least 4 classes; use apgd with 'margin'")
    top, _ = logits.topk(4, dim=1)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return (z_t - z_y) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)


def _loss(logits, y, loss):
    return dlr_loss(logits, y) if loss == "dlr" else per_example_loss(logits, y, loss, False)


def _objective(loss):
    """``loss`` ("ce", "margin", "dlr" or a callable) as a callable (logits, y) -> (B,)."""
    return loss if callable(loss) else (lambda logits, y: _loss(logits, y, loss))


def _view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *([1] * (like.dim() - 1)))


def _mass_support(delta, frac):
    """(B,) the fewest coordinates of each delta that carry ``frac`` of its l_1 mass."""
    a = delta.flatten(1).abs().sort(dim=1, descending=True).values
    css = a.cumsum(dim=1)
    return (css < frac * css[:, -1:]).sum(dim=1) + 1


def _run(model, x, y, threat, delta, steps, loss, rho, momentum):
    """One APGD run from ``delta``; returns (x_best, success, loss_best) per example.

    ``loss``: "ce", "margin", "dlr" or a callable (logits (B, K), y (B,)) -> (B,) to maximise.
    Success is always misclassification of y.
    """
    b, d = x.shape[0], x[0].numel()
    eps = threat.eps_for(x)
    sparse = threat.sparse  # l1-APGD: steps on k coordinates, k adapted at the checkpoints
    # eta in units of eps: the step moves eta * eps (sign steps: eta * eps per pixel)
    eta = torch.full((b,), threat.apgd_eta, dtype=x.dtype, device=x.device)
    k_min = min(max(math.ceil(float(eps.max())), 1), d) if sparse else 1
    k_max = max(math.ceil(0.1 * d), k_min)
    k = torch.full((b,), max(math.ceil(0.01 * d), k_min), dtype=torch.long, device=x.device)
    marks = set(checkpoints(steps))
    forward = loss_and_grad(model, x, y, _objective(loss))

    f, grad, succ = forward(delta)
    best_x, best_loss, best_succ = x + delta, f.clone(), succ.clone()  # returned point
    max_delta, max_f, max_grad = delta.clone(), f.clone(), grad.clone()  # the APGD x_max
    prev = delta.clone()
    increases = torch.zeros(b, dtype=x.dtype, device=x.device)
    last_eta, last_max_f, last_mark = eta.clone(), max_f.clone(), 0
    for t in range(steps):
        with torch.no_grad():
            # the threat's steepest ascent of unit size (l_2: no norm floor, see L2.direction)
            step = _view(eta * eps, x) * threat.direction(grad, x + delta, k if sparse else None)
            z = threat.project(delta + step, x)
            a = 1.0 if t == 0 else momentum
            new = threat.project(delta + a * (z - delta) + (1 - a) * (delta - prev), x)
            prev, delta = delta, new
        f_new, grad, succ = forward(delta)
        with torch.no_grad():
            increases += (f_new > f).to(x.dtype)
            f = f_new
            upd = better(succ, f, best_succ, best_loss)
            best_x = torch.where(_view(upd, x), x + delta, best_x)
            best_loss = torch.where(upd, f, best_loss)
            best_succ = best_succ | succ
            up = f > max_f
            max_delta = torch.where(_view(up, x), delta, max_delta)
            max_grad = torch.where(_view(up, x), grad, max_grad)
            max_f = torch.where(up, f, max_f)
            if t + 1 in marks:
                slow = increases < rho * (t + 1 - last_mark)
                stuck = (last_eta == eta) & (last_max_f == max_f)
                halve = slow | stuck
                last_eta, last_max_f, last_mark = eta.clone(), max_f.clone(), t + 1
                eta = torch.where(halve, eta / 2, eta)
                back = _view(halve, x)
                delta = torch.where(back, max_delta, delta)
                prev = torch.where(back, max_delta, prev)
                grad = torch.where(back, max_grad, grad)
                f = torch.where(halve, max_f, f)
                increases.zero_()
                if sparse:
                    k = _mass_support(max_delta, 0.9).clamp(k_min, k_max)
    return AttackResult(best_x, best_succ, best_loss)


def _run_shrinking(model, x, y, threat, delta, steps, loss, rho, momentum, scales,
                   sparsity="mass"):
    """APGD over a shrinking budget, ``scales`` x eps (decreasing, ending at 1): each stage runs
    its share of the steps (``stage_steps``) from the previous stage's best point projected onto
    its own, smaller ball. Only the last stage, at eps, decides success and x_adv. On l_1 the
    larger balls let the sparse steps find where the mass should go before the budget binds
    (Croce & Hein 2021; AutoAttack's l_1 version runs l1-APGD so, with 5 restarts)."""
    run = run_l0 if sparsity == "l0" else _run
    if len(scales) == 1:  # plain APGD
        return run(model, x, y, threat, delta, steps, _objective(loss), rho, momentum)
    res = None
    for scale, n in zip(scales, stage_steps(steps, len(scales)), strict=True):
        t = threat if scale == 1 else threat.scaled(scale)
        delta = t.project(delta if res is None else res.x_adv - x, x)
        res = run(model, x, y, t, delta, n, _objective(loss), rho, momentum)
    return res


def _start(threat, x, scales, random_start, generator, sparsity="mass"):
    """The first iterate: a random point of the largest ball of the schedule, or x itself;
    with ``sparsity="l0"`` Gaussian noise projected onto that ball (AutoAttack's)."""
    if not random_start:
        return threat.zero(x)
    wide = threat if scales == (1.0,) else threat.scaled(scales[0])
    if sparsity == "l0":
        return gaussian_start(wide, x, generator)
    return wide.random_start(x, generator)


def check_sparsity(threat, sparsity):
    """Raise ValueError unless ``sparsity`` is "mass", or "l0" on a sparse (l_1) threat."""
    if sparsity not in ("mass", "l0"):
        raise ValueError(f"sparsity must be 'mass' (advlab's) or 'l0' (AutoAttack's): {sparsity!r}")
    if sparsity == "l0" and not threat.sparse:
        raise ValueError(f"sparsity='l0' is a schedule for l_1 steps; {threat!r} takes dense "
                         "steps: leave sparsity at 'mass'")


def check_scales(scales, steps):
    """Raise ValueError unless ``scales`` decrease to 1 and every stage of ``steps`` gets one."""
    ok = (len(scales) >= 1 and float(scales[-1]) == 1.0
          and all(a > b for a, b in zip(scales, scales[1:], strict=False))
          and min(stage_steps(steps, len(scales))) >= 1)
    if not ok:
        raise ValueError("eps_scales must decrease and end at 1 (e.g. (3, 2, 1): 3 x eps, then "
                         f"2 x, then eps), with at least one step each; got {tuple(scales)} for "
                         f"{steps} steps")


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    steps: int = 100,
    restarts: int = 1,
    loss: str = "ce",
    rho: float = 0.75,
    momentum: float = 0.75,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    eps_scales: tuple[float, ...] = (1.0,),
    sparsity: str = "mass",
) -> AttackResult:
    """APGD on ``Linf``, ``L2`` or ``L1`` (l1-APGD); untargeted.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K) logits; mode and requires_grad restored after.
        x: (B, C, H, W) float images in [0, 1]. y: (B,) int64 labels.
        threat: the threat model (budgets a float or (B,) tensor).
        steps: gradient steps per run (one forward and backward pass each, plus one to start).
        restarts: extra runs (from new random starts) only on examples not yet misclassified.
        loss: "ce", "margin" or "dlr". rho, momentum: APGD's constants (0.75, 0.75).
        random_start: start at a random point of the threat model (else at x).
        generator: a ``torch.Generator`` on x's device for the random starts.
        eps_scales: the budget schedule, decreasing to 1: (1,) is plain APGD; (3, 2, 1), the
            l_1 schedule of AutoAttack's l_1 version, runs 30% of the steps at 3 x eps, 30% at
            2 x eps and the rest at eps, each stage from the last one's best point projected
            onto its ball (the random start lies in the largest ball). Success counts at eps.
        sparsity: how l1-APGD picks the k coordinates it steps on (l_1 only): "mass" (advlab's,
            APGD's checkpoints, k from the 90% mass support of the best point, 1%-10% of the
            coordinates) or "l0" (AutoAttack's: k = L0 of the best point / 1.5, checked every
            4% of the steps, no momentum, a Gaussian start). The two break different
            images near the boundary; the strong l_1 stack runs both.

    Returns:
        AttackResult: x_adv (B, C, H, W) in the threat model and [0, 1], success (B,), loss (B,).
    """
    _check_args(threat, steps, restarts)
    if loss not in ("ce", "margin", "dlr"):
        raise ValueError(f"loss must be 'ce', 'margin' or 'dlr', got {loss!r}")
    scales = tuple(float(s) for s in eps_scales)
    check_scales(scales, steps)
    check_sparsity(threat, sparsity)
    with attack_session(model, x, y) as x:

        def run(todo, first):
            xs, ys, t = x[todo], y[todo], threat.restrict(todo)
            start = _start(t, xs, scales, random_start, generator, sparsity)
            return _run_shrinking(model, xs, ys, t, start, steps, loss, rho, momentum, scales,
                                  sparsity)

        res = best_of_restarts(x.shape[0], x.device, restarts, run)
        res.x_adv = into_threat(threat, x, res.x_adv)
    return res


def _check_args(threat, steps, restarts):
    if not (isinstance(threat, ThreatModel) and threat.additive):
        raise TypeError(f"APGD attacks additive threats such as Linf, L2 or L1, got {threat!r}")
    if steps < 1 or restarts < 1:
        raise ValueError(f"need steps >= 1 and restarts >= 1, got {steps} and {restarts}")


def apgd_targeted(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    targets: int = 9,
    steps: int = 100,
    rho: float = 0.75,
    momentum: float = 0.75,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    eps_scales: tuple[float, ...] = (1.0,),
    sparsity: str = "mass",
) -> AttackResult:
    """Targeted APGD (APGD-T) with the targeted DLR loss on ``Linf``, ``L2`` or ``L1``.

    One APGD run of ``steps`` steps per target: the ``targets`` classes with the highest clean
    logits after y (the runner-up first; at most K - 1), each run only on the examples no
    earlier target has broken; examples misclassified at x are not attacked. Cost: up to
    ``targets * (steps + 1)`` forward and backward passes per example that stays robust.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K) logits, K >= 4; mode and requires_grad restored.
        x: (B, C, H, W) float images in [0, 1]. y: (B,) int64 labels.
        threat: ``Linf``, ``L2`` or ``L1`` (l1-APGD steps and projection), budgets a float or (B,).
        targets: how many target classes to try (AutoAttack: 9, every other class on MNIST).
        steps: APGD steps per target (AutoAttack: 100). rho, momentum: APGD's constants.
        random_start: each run starts at a random point of the threat model (else at x).
        generator: a ``torch.Generator`` on x's device for the random starts.
        eps_scales: the budget schedule of each run, as for ``apgd`` (AutoAttack's l_1 version
            runs its APGD-T at (3, 2, 1) x eps over 5 targets).
        sparsity: how l1-APGD picks the k coordinates it steps on (l_1 only): "mass" (advlab's,
            APGD's checkpoints, k from the 90% mass support of the best point, 1%-10% of the
            coordinates) or "l0" (AutoAttack's: k = L0 of the best point / 1.5, checked every
            4% of the steps, no momentum, a Gaussian start). The two break different
            images near the boundary; the strong l_1 stack runs both.

    Returns:
        AttackResult: x_adv (B, C, H, W) in the threat model and [0, 1]; success (B,) True where
        x_adv is misclassified (any wrong class, not only the target); loss (B,) the targeted
        DLR loss at x_adv (the best over the targets tried).
    """
    _check_args(threat, steps, 1)
    if targets < 1:
        raise ValueError(f"need targets >= 1 (how many classes to aim at), got {targets}")
    scales = tuple(float(s) for s in eps_scales)
    check_scales(scales, steps)
    check_sparsity(threat, sparsity)
    with attack_session(model, x, y, probe=False) as x:
        with torch.no_grad():
            logits = model(x)
        check_logits(logits, y)
        ranked = ranked_others(logits, y)[:, :targets]
        best = AttackResult(x.clone(), misclassified(logits, y, False),
                            dlr_targeted_loss(logits, y, ranked[:, 0]))
        for i in range(ranked.shape[1]):
            todo = (~best.success).nonzero().squeeze(1)  # one sync per target, not per step
            if todo.numel() == 0:
                break
            xs, ys, ts, t = x[todo], y[todo], ranked[todo, i], threat.restrict(todo)
            start = _start(t, xs, scales, random_start, generator, sparsity)

            def objective(lg, yy, ts=ts):
                return dlr_targeted_loss(lg, yy, ts)

            best.merge(todo, _run_shrinking(model, xs, ys, t, start, steps, objective, rho,
                                            momentum, scales, sparsity))
        best.x_adv = into_threat(threat, x, best.x_adv)
    return best


@dataclass(frozen=True)
class APGD:
    """APGD as a stateless attack object: ``APGD(L1(10.0), steps=100)(model, x, y)``.

    Without a ``generator``, each call seeds a local one with ``seed`` (deterministic results).
    """

    threat: ThreatModel
    steps: int = 100
    restarts: int = 1
    loss: str = "ce"
    seed: int = 0
    eps_scales: tuple[float, ...] = (1.0,)
    sparsity: str = "mass"

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        generator = own_generator(generator, self.seed, x)
        return apgd(model, x, y, self.threat, self.steps, self.restarts, self.loss,
                    generator=generator, eps_scales=self.eps_scales, sparsity=self.sparsity)


@dataclass(frozen=True)
class APGDT:
    """Targeted APGD as a stateless attack object: ``APGDT(L2(2.0), targets=9, steps=50)``.

    ``steps`` are per target, so an example that stays robust costs ``targets * (steps + 1)``
    gradient passes. Without a ``generator``, each call seeds a local one with ``seed``.
    """

    threat: ThreatModel
    steps: int = 100
    targets: int = 9
    seed: int = 0
    eps_scales: tuple[float, ...] = (1.0,)
    sparsity: str = "mass"

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        generator = own_generator(generator, self.seed, x)
        return apgd_targeted(model, x, y, self.threat, self.targets, self.steps,
                             generator=generator, eps_scales=self.eps_scales,
                             sparsity=self.sparsity)
