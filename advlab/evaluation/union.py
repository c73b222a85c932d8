"""The union evaluator: accuracy under each threat and under the union of all of them.

An example counts as robust to a threat when it survives every attack listed for that threat,
and as union-robust when it is robust to every threat (the adversary picks the type per input).
Attacks on one threat run one after another on the examples still standing, so no steps are
spent on examples that are already misclassified (as AutoAttack does). The evaluator re-checks
every adversarial input itself: its own forward pass decides, and l_p outputs are checked
against their threat model, so a buggy attack can neither overclaim nor underclaim.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks.base import (
    AttackResult,
    better,
    check_inputs,
    check_logits,
    frozen,
    per_example_loss,
)
from ..device import LowPrecision, parse_search_dtype

__all__ = ["UnionResult", "evaluate_union", "accuracy"]

Attack = Callable[..., AttackResult]


@dataclass
class UnionResult:
    """Results of ``evaluate_union`` on N examples.

    clean: (N,) bool correct without attack. robust: threat name -> (N,) bool correct under it.
    union: (N,) bool correct under every threat. worst_x: (N, C, H, W) per-example worst case
    (misclassified first, else highest loss). worst_threat: per example, the threat that gave it
    ("clean" when already misclassified, "" when nothing beat the clean loss). broken_by: threat
    name -> (N,) int64, the position in that threat's stack of the attack that broke the example
    first (-1: not broken there, or misclassified without attack); ``breaks`` counts them.
    attack_seconds: threat name -> wall seconds each attack of its stack took, in stack order,
    summed over batches (where the evaluation's time goes; an attack that found no example
    left standing took 0).
    """

    clean: torch.Tensor
    robust: dict[str, torch.Tensor]
    union: torch.Tensor
    worst_x: torch.Tensor | None = None
    worst_threat: list[str] = field(default_factory=list)
    per_threat: bool = True
    broken_by: dict[str, torch.Tensor] = field(default_factory=dict)
    attack_seconds: dict[str, list[float]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.clean.numel())

    @property
    def clean_accuracy(self) -> float:
        return self.clean.float().mean().item()

    @property
    def union_accuracy(self) -> float:
        return self.union.float().mean().item()

    def accuracy(self, threat: str) -> float:
        """Accuracy under one threat (NaN when run with per_threat=False, except the first)."""
        return self.robust[threat].float().mean().item()

    def breaks(self, threat: str) -> list[int]:
        """How many examples each attack of ``threat``'s stack broke first, in stack order."""
        by = self.broken_by[threat]
        top = int(by.max()) + 1 if by.numel() else 0
        return torch.bincount(by[by >= 0], minlength=top).tolist()

    def as_dict(self) -> dict[str, float]:
        out = {"clean": self.clean_accuracy}
        out.update({name: self.accuracy(name) for name in self.robust})
        out["union"] = self.union_accuracy
        return out

    def table(self, title: str = "") -> str:
        """A small text table of accuracies in percent."""
        rows = self.as_dict()
        width = max(len(k) for k in rows) + 2
        lines = [title] if title else []
        lines.append(f"{'threat':<{width}}accuracy   (n = {self.n})")
        for name, acc in rows.items():
            shown = "  --" if math.isnan(acc) else f"{100 * acc:5.1f}%"
            lines.append(f"{name:<{width}}{shown}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _batches(data, batch_size: int):
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} examples but y has {y.shape[0]}")
        for i in range(0, x.shape[0], batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
        return
    if isinstance(data, torch.utils.data.Dataset):
        data = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    yield from data


def _num_batches(data, batch_size):
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return math.ceil(data[0].shape[0] / batch_size)
    try:
        n = len(data)
    except TypeError:
        return None
    return math.ceil(n / batch_size) if isinstance(data, torch.utils.data.Dataset) else n


def _as_stack(attacks) -> list[Attack]:
    return list(attacks) if isinstance(attacks, Sequence) else [attacks]


def _checked_attacks(attacks) -> dict[str, list[Attack]]:
    """``attacks`` as {threat name: [attacks]}, or a clear error for anything else."""
    example = "{'linf': [PGD(Linf(0.3))], 'l2': [PGD(L2(2.0))]}"
    if not isinstance(attacks, Mapping):
        kind = type(attacks).__name__
        raise TypeError(
            f"attacks must map each threat name to its attacks, e.g. {example}, or "
            f"advlab.presets.attacks('mnist', 'lite'); got a {kind}"
            + (": wrap it as {'linf': attacks} (one threat) or name each threat"
               if isinstance(attacks, (list, tuple)) else "")
        )
    if not attacks:
        raise ValueError(f"give at least one threat and its attacks, e.g. {example}")
    return {name: _as_stack(a) for name, a in attacks.items()}


def _check_not_empty(data) -> None:
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        if data[0].shape[0] == 0:
            raise ValueError(f"x is an empty batch (shape {tuple(data[0].shape)}): "
                             "evaluate_union needs at least one example")


def _checked_adv(attack, x, x_adv):
    """Refuse adversarial inputs outside the image box or outside an l_p attack's threat model."""
    if x_adv.shape != x.shape:
        raise RuntimeError(f"{attack!r} returned shape {tuple(x_adv.shape)}, not {tuple(x.shape)}")
    threat = getattr(attack, "threat", None)
    ok = ((x_adv >= -1e-6) & (x_adv <= 1 + 1e-6)).flatten(1).all(dim=1)
    try:
        ok = ok & threat.contains(x, x_adv)
    except (AttributeError, TypeError):  # no threat, or one that x_adv alone cannot check
        pass
    if not bool(ok.all()):
        raise RuntimeError(
            f"{attack!r} returned {int((~ok).sum())} inputs outside its threat model or [0, 1]; "
            "this is a bug in the attack, and its results would be wrong"
        )


def evaluate_union(
    model: nn.Module,
    data,
    attacks: Mapping[str, Attack | Sequence[Attack]],
    batch_size: int = 500,
    per_threat: bool = True,
    keep_worst: bool = True,
    progress: bool | None = None,
    search_dtype: torch.dtype | str | None = None,
) -> UnionResult:
    """Clean, per-threat and union accuracy of ``model``.

    Args:
        model: (B, C, H, W) in [0, 1] -> (B, K) logits; mode restored afterwards.
        data: a pair (x, y) of tensors, a Dataset, or an iterable of (x, y) batches, on the
            model's device.
        attacks: threat name -> one attack or a list of attacks, each a callable
            ``attack(model, x, y)`` returning an ``AttackResult`` (e.g. ``PGD(Linf(0.3))``).
        per_threat: if False, each threat only attacks examples that survived the threats before
            it: the union accuracy is the same and cheaper, the later per-threat numbers are not
            measured (shown as NaN).
        keep_worst: keep the per-example worst-case inputs (memory: one copy of the data).
        progress: tqdm progress bar over batches (default: when there is more than one batch).
        search_dtype: run the attacks' passes in this lower precision (``torch.bfloat16`` or
            "bfloat16": 0.62x the CPU time on a CPU with native bf16, by
            ``benchmarks/search_precision.py``; see ``advlab.device.LowPrecision``). Every
            example an attack returns is still checked with ``model`` in its own precision, so
            only that check counts an example as broken: a lower-precision search can miss an
            example, never claim one that is not there.
            Where it leaves an image standing within ``NEAR_MISS`` of the boundary (closer than
            its logits can tell), the attack runs again on that image in ``model``'s precision.
    """
    from tqdm.auto import tqdm

    stacks = _checked_attacks(attacks)
    _check_not_empty(data)
    dtype = parse_search_dtype(search_dtype)
    total = _num_batches(data, batch_size)
    show = progress if progress is not None else (total or 2) > 1
    clean_all, worst_all, threat_all = [], [], []
    robust_all = {name: [] for name in stacks}
    by_all = {name: [] for name in stacks}
    seconds = {name: [0.0] * len(stack) for name, stack in stacks.items()}
    with frozen(model):
        search = model if dtype is None else LowPrecision(model, dtype)  # in eval mode too
        for x, y in tqdm(_batches(data, batch_size), total=total, disable=not show,
                         desc="union eval"):
            check_inputs(model, x, y)
            out = _evaluate_batch(model, x, y, stacks, per_threat, keep_worst, seconds, search)
            clean_all.append(out[0])
            for name in stacks:
                robust_all[name].append(out[1][name])
                by_all[name].append(out[4][name])
            worst_all.append(out[2])
            threat_all.extend(out[3])
    if not clean_all:
        raise ValueError("data held no batches: evaluate_union needs at least one example")
    clean = torch.cat(clean_all)
    robust = {name: torch.cat(v) for name, v in robust_all.items()}
    union = clean.clone()
    for v in robust.values():
        union &= v
    if not per_threat:
        for name in list(robust)[1:]:
            robust[name] = torch.full_like(robust[name], float("nan"), dtype=torch.float32)
    worst = torch.cat(worst_all) if keep_worst else None
    broken_by = {name: torch.cat(v) for name, v in by_all.items()}
    return UnionResult(clean, robust, union, worst, threat_all, per_threat, broken_by, seconds)


#: a float32 margin (true logit minus the best other) under which an image that a lower-precision
#: search left standing is attacked again in float32: bfloat16 moved the margins of three zoo
#: models by up to 0.08 at their APGD examples (200 test images, measured by hand; the test in
#: tests/test_search_precision.py bounds the logits' error at 0.25), so it cannot tell these
#: from broken ones
NEAR_MISS = 0.25


def _near_misses_again(model, attack, x, y, x_adv):
    """``x_adv``, with ``attack`` run again in ``model``'s own precision on the images that the
    lower-precision search left standing within ``NEAR_MISS`` of the boundary (x, x_adv: (B, ...);
    y: (B,)); an image the second run breaks takes its example."""
    with torch.no_grad():
        loss = per_example_loss(model(x_adv), y, "margin", targeted=False)  # -margin
    idx = ((loss <= 0) & (loss >= -NEAR_MISS)).nonzero().flatten()
    if idx.numel() == 0:
        return x_adv
    res = attack(model, x[idx], y[idx])
    again = (res.x_adv if isinstance(res, AttackResult) else res).detach()
    with torch.no_grad():
        hit = model(again).argmax(1) != y[idx]
    x_adv = x_adv.clone()
    x_adv[idx[hit]] = again[hit]
    return x_adv


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _evaluate_batch(model, x, y, stacks, per_threat, keep_worst, seconds, search):
    names = ["" for _ in range(x.shape[0])]
    with torch.no_grad():
        logits = model(x)
    check_logits(logits, y)
    clean = logits.argmax(1) == y
    worst_loss = F.cross_entropy(logits, y, reduction="none")
    fooled = ~clean
    worst_x = x.detach().clone() if keep_worst else None
    for i in (~clean).nonzero().flatten().tolist():
        names[i] = "clean"
    standing = clean.clone()
    robust, broken_by = {}, {}
    for name, stack in stacks.items():
        alive = clean.clone() if per_threat else standing.clone()
        by = torch.full_like(y, -1, dtype=torch.long)
        for pos, attack in enumerate(stack):
            idx = alive.nonzero().flatten()
            if idx.numel() == 0:
                break
            xs, ys = x[idx], y[idx]
            start = time.perf_counter()
            res = attack(search, xs, ys)  # ``model`` itself, or it in a lower precision
            x_adv = (res.x_adv if isinstance(res, AttackResult) else res).detach()
            if search is not model:
                x_adv = _near_misses_again(model, attack, xs, ys, x_adv)
            _synchronize(x_adv.device)  # once per attack and batch, not per step
            seconds[name][pos] += time.perf_counter() - start
            _checked_adv(attack, xs, x_adv)
            with torch.no_grad():
                lg = model(x_adv)
            hit = lg.argmax(1) != ys
            loss = F.cross_entropy(lg, ys, reduction="none")
            alive[idx[hit]] = False
            by[idx[hit]] = pos
            upd = better(hit, loss, fooled[idx], worst_loss[idx])
            j = idx[upd]
            fooled[j], worst_loss[j] = hit[upd], loss[upd]
            if keep_worst:
                worst_x[j] = x_adv[upd]
            for i in j.tolist():
                names[i] = name
        robust[name], broken_by[name] = alive, by.cpu()
        standing &= alive
    return clean.cpu(), {k: v.cpu() for k, v in robust.items()}, (
        worst_x.cpu() if keep_worst else None), names, broken_by


def accuracy(model: nn.Module, data, batch_size: int = 1000) -> float:
    """Clean accuracy of ``model`` on (x, y) tensors, a Dataset or batches."""
    correct = total = 0
    with frozen(model), torch.no_grad():
        for x, y in _batches(data, batch_size):
            correct += (model(x).argmax(1) == y).sum().item()
            total += y.numel()
    return correct / max(total, 1)
