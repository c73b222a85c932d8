"""What a training batch is made of: clean, one attack, or a multi-perturbation strategy.

A strategy maps a clean batch (x (B, C, H, W) in [0, 1], y (B,)) to the batch the model is
trained on, plus the per-threat robust accuracy it saw on the way (for the progress bar):

- ``standard``: the clean batch.
- ``single``: one attack's outputs (PGD adversarial training, Madry et al. 2018; FGSM with
  random start, Wong et al. 2020; worst-of-k rotation-translations, Engstrom et al. 2019).
- ``avg``: every attack's outputs, concatenated (k x B examples; Tramèr & Boneh 2019).
- ``max``: per example, the attack output with the highest loss (Tramèr & Boneh 2019).
- ``msd``: multi steepest descent (Maini et al. 2020): one gradient per step, one steepest-ascent
  step per l_p norm from it, each projected on its own ball; keep, per example, the best.
- ``eat``: E-AT style (Croce & Hein 2022): one threat per batch, drawn with probability
  proportional to its running robust error, so the weakest threat is trained on most.

Attacks are described by ``AttackSpec`` and built for an eps scale in (0, 1] (eps warm-up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..attacks import APGD, PGD, AttackResult, msd_attack, random_attack
from ..attacks.apgd import check_scales, check_sparsity
from ..threats import RotationTranslation, registry

__all__ = ["AttackSpec", "TrainBatch", "Strategy", "STRATEGIES", "msd_attack", "build_strategy"]

STRATEGIES = ("standard", "single", "avg", "max", "msd", "eat")
KINDS = ("pgd", "apgd", "fgsm-rs", "random")


@dataclass(frozen=True)
class AttackSpec:
    """One training attack: a preset threat by name and how to attack it.

    threat: a registered threat name, "linf", "l1", "l2" or "rt" (budgets from the threat
        registry, ``advlab.presets.BUDGETS[dataset]``).
    kind: "pgd" (PGD with random start), "apgd" (APGD with the CE loss and a random start;
        l1-APGD with the exact l_1-ball-and-box projection for "l1": no step size to tune, and
        the l_1 attack Croce & Hein 2021 found to train the strongest l_1 robustness),
        "fgsm-rs" (one step of ``step_size`` from a random start; Wong et al. use 1.25 eps), or
        "random" (worst of ``k`` random transforms; "rt" only).
    steps, step_size: PGD/APGD steps and PGD's step size (None: the threat's default for
    ``steps``; APGD ignores it). step_size is given at full eps and scaled with it during eps
    warm-up.
    eps_scales, sparsity: APGD only (see ``advlab.attacks.apgd``): a budget schedule shrinking
    to eps, e.g. (5, 3, 1), and, for l_1, how l1-APGD picks the pixels it steps on ("mass" or
    AutoAttack's "l0"). On l_inf-trained MNIST models whose gradients mask l_1, l1-APGD-30
    with (5, 3, 1) and "l0" finds more of what the trusted stack finds than plain l1-APGD-30,
    at the same cost (docs/experiments).
    """

    threat: str
    kind: str = "pgd"
    steps: int = 10
    step_size: float | None = None
    k: int = 10
    dataset: str = "mnist"
    eps_scales: tuple[float, ...] = (1.0,)
    sparsity: str = "mass"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "apgd" and self.step_size is not None:
            raise ValueError("APGD adapts its own step size: leave step_size at None")
        kinds = registry.info(self.threat).train_kinds
        if self.kind not in kinds:
            raise ValueError(f"{self.threat!r} is trained with kind {' or '.join(map(repr, kinds))}"
                             f", not {self.kind!r} (rotation-translation: kind='random' only)")
        self._check_apgd_options()

    def _check_apgd_options(self):
        scales = tuple(float(s) for s in self.eps_scales)
        object.__setattr__(self, "eps_scales", scales)
        if (scales, self.sparsity) != ((1.0,), "mass") and self.kind != "apgd":
            raise ValueError(f"eps_scales and sparsity are APGD options; kind is {self.kind!r}: "
                             "use kind='apgd' or leave them at their defaults")
        check_scales(scales, self.steps)  # APGD's own checks, at the time the spec is written
        check_sparsity(self.threat_model(), self.sparsity)

    def options(self) -> dict:
        """The APGD options that differ from their defaults (for recipes' records)."""
        out = {}
        if self.eps_scales != (1.0,):
            out["eps_scales"] = list(self.eps_scales)
        if self.sparsity != "mass":
            out["sparsity"] = self.sparsity
        return out

    def options_text(self) -> str:
        """The same in words, e.g. "budget 5-3-1 x eps, l0 sparsity" ("" at the defaults)."""
        said = []
        if self.eps_scales != (1.0,):
            said.append(f"budget {'-'.join(f'{s:g}' for s in self.eps_scales)} x eps")
        if self.sparsity != "mass":
            said.append(f"{self.sparsity} sparsity")
        return ", ".join(said)

    def threat_model(self, scale: float = 1.0):
        """The registered threat at its ``dataset`` budget, multiplied by ``scale``."""
        t = registry.make(self.threat, dataset=self.dataset)
        return t if scale == 1.0 else t.scaled(scale)

    def build(self, scale: float = 1.0):
        """A callable ``attack(model, x, y, generator) -> AttackResult`` at ``scale`` x eps."""
        threat = self.threat_model(scale)
        if self.kind == "random":
            return _RandomRT(threat, self.k)
        if self.kind == "fgsm-rs":
            size = (1.25 * threat.eps) if self.step_size is None else self.step_size * scale
            return PGD(threat, steps=1, step_size=size)
        if self.kind == "apgd":
            return APGD(threat, steps=self.steps, loss="ce", eps_scales=self.eps_scales,
                        sparsity=self.sparsity)
        size = None if self.step_size is None else self.step_size * scale
        return PGD(threat, steps=self.steps, step_size=size)

    def cost(self) -> int:
        """Forward+backward passes per example (forward-only passes count as 1/3)."""
        if self.kind == "random":
            return math.ceil(self.k / 3)
        return 1 if self.kind == "fgsm-rs" else self.steps


@dataclass(frozen=True)
class _RandomRT:
    threat: RotationTranslation
    k: int

    def __call__(self, model, x, y, generator=None) -> AttackResult:
        return random_attack(model, x, y, self.threat, k=self.k, generator=generator)


@dataclass
class TrainBatch:
    """x (B', C, H, W), y (B',) to train on; robust: threat -> (correct, total) on its attack."""

    x: torch.Tensor
    y: torch.Tensor
    robust: dict[str, tuple[int, int]] = field(default_factory=dict)


def _correct(res: AttackResult) -> tuple[torch.Tensor, int]:
    return (~res.success).sum(), res.success.numel()


class Strategy:
    """Turns clean batches into training batches. ``state_dict`` holds what E-AT keeps."""

    def __init__(self, name: str, specs: list[AttackSpec], msd_steps: int = 10,
                 eat_momentum: float = 0.9):
        if name not in STRATEGIES:
            raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
        if name == "standard" and specs:
            raise ValueError("standard training takes no attacks")
        if name == "single" and len(specs) != 1:
            raise ValueError("'single' takes exactly one attack")
        if name in ("avg", "max", "msd", "eat") and len(specs) < 2:
            raise ValueError(f"{name!r} combines at least two attacks")
        if name == "msd" and any(s.threat_model().searched for s in specs):
            raise ValueError("MSD steps along gradients: l_p threats only (no 'rt')")
        self.name, self.specs = name, list(specs)
        self.msd_steps, self.eat_momentum = msd_steps, eat_momentum
        self.running = {s.threat: 0.0 for s in self.specs}  # E-AT: running robust accuracy

    def state_dict(self) -> dict:
        return {"running": dict(self.running)}

    def load_state_dict(self, state: dict) -> None:
        self.running.update(state.get("running", {}))

    def cost(self) -> float:
        """Forward+backward passes per example, relative to the data (for the benchmark)."""
        if self.name == "standard":
            return 1
        costs = [s.cost() for s in self.specs]
        if self.name == "single":
            return 1 + costs[0]
        if self.name == "avg":
            return sum(costs) + len(costs)
        if self.name == "max":
            return sum(costs) + 1
        if self.name == "msd":
            return self.msd_steps * (1 + len(self.specs) / 3) + 1
        return 1 + sum(costs) / len(costs)

    def eat_probs(self) -> torch.Tensor:
        """E-AT: P(threat) proportional to its running robust error (floored at 5%)."""
        err = torch.tensor([1.0 - self.running[s.threat] for s in self.specs]).clamp_min(0.05)
        return err / err.sum()

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, scale: float = 1.0,
                 generator: torch.Generator | None = None,
                 choice_generator: torch.Generator | None = None) -> TrainBatch:
        """The batch to train on for clean ``x`` (B, C, H, W), ``y`` (B,) at ``scale`` x eps.

        ``generator`` drives random starts (on x's device); ``choice_generator`` (CPU) draws the
        E-AT threat and must be identical on every data-parallel process.
        """
        if self.name == "standard":
            return TrainBatch(x, y)
        if self.name == "msd":
            ths = [s.threat_model(scale) for s in self.specs]
            sizes = [(s.step_size * scale) if s.step_size is not None
                     else th.default_step_size(self.msd_steps)
                     for s, th in zip(self.specs, ths, strict=True)]
            res = msd_attack(model, x, y, ths, self.msd_steps, sizes)
            return TrainBatch(res.x_adv, y, {"msd": _correct(res)})
        if self.name == "eat":
            i = int(torch.multinomial(self.eat_probs(), 1, generator=choice_generator))
            spec = self.specs[i]
            res = spec.build(scale)(model, x, y, generator=generator)
            return TrainBatch(res.x_adv, y, {spec.threat: _correct(res)})
        results = [s.build(scale)(model, x, y, generator=generator) for s in self.specs]
        robust = {s.threat: _correct(r) for s, r in zip(self.specs, results, strict=True)}
        if self.name == "single":
            return TrainBatch(results[0].x_adv, y, robust)
        if self.name == "avg":
            return TrainBatch(torch.cat([r.x_adv for r in results]), y.repeat(len(results)),
                              robust)
        # max: the highest-loss output per example (a misclassified one counts as +inf)
        scores = torch.stack([r.loss.masked_fill(r.success, float("inf")) for r in results])
        pick = scores.argmax(dim=0)
        xs = torch.stack([r.x_adv for r in results])
        worst = xs[pick, torch.arange(x.shape[0], device=x.device)]
        any_fooled = torch.stack([r.success for r in results]).any(dim=0)
        robust["worst"] = ((~any_fooled).sum(), any_fooled.numel())
        return TrainBatch(worst, y, robust)

    def update_running(self, robust: dict[str, tuple[float, float]]) -> None:
        """E-AT bookkeeping: exponential average of each threat's batch robust accuracy."""
        m = self.eat_momentum
        for name, (correct, total) in robust.items():
            if name in self.running and total > 0:
                self.running[name] = m * self.running[name] + (1 - m) * float(correct) / total


def build_strategy(name: str, specs, msd_steps: int = 10) -> Strategy:
    """``Strategy`` from a name and a list of ``AttackSpec`` (or dicts of their fields)."""
    specs = [s if isinstance(s, AttackSpec) else AttackSpec(**s) for s in specs]
    return Strategy(name, specs, msd_steps=msd_steps)
