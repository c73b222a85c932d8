"""What a training run reads and reports: its data, the per-epoch monitor and the log line."""

from __future__ import annotations

import torch

from .recipes import Recipe

__all__ = ["epoch_line", "load_data", "monitor"]


def load_data(recipe: Recipe, data, train: bool, n):
    """``data`` when given, else the first ``n`` images of the recipe's dataset (x (N, C, H, W)
    in [0, 1], y (N,))."""
    if data is not None:
        return data
    from ..data import dataset_tensors

    return dataset_tensors(recipe.dataset, n=n, train=train)


def monitor(model, recipe: Recipe, test, device) -> dict:
    """Clean, per-threat and union accuracy on ``test`` under ``recipe.monitor_strength``.

    l_p threats, "lite": APGD, PGD and the gradient-free Square Attack (few steps and queries),
    so that a model that learns to mask the training attack's gradients does not look robust in
    the log; still an upper bound, which overstated the trusted union by 13-14 points on the
    runs of docs/experiments. "strong": the trusted stack (with targeted APGD) that published
    numbers use. Rotation-translation: the coarse 11 x 3 x 3 grid. ``test_union``: the union
    of the recipe's threats.
    """
    from ..evaluation.presets import attacks
    from ..evaluation.union import evaluate_union

    x, y = (t.to(device) for t in test)
    names = sorted({a.threat for a in recipe.attacks})
    lp = [n for n in names if n != "rt"]
    stacks = attacks(recipe.dataset, recipe.monitor_strength, include=lp) if lp else {}
    if "rt" in names:
        stacks.update(attacks(recipe.dataset, "fast", include=["rt"]))
    if not stacks:
        with torch.no_grad():
            return {"test_clean": (model(x).argmax(1) == y).float().mean().item()}
    res = evaluate_union(model, (x, y), stacks, keep_worst=False, progress=False)
    out = {"test_clean": res.clean_accuracy}
    out.update({f"test_{n}": res.accuracy(n) for n in stacks})
    out["test_union"] = res.union_accuracy
    return out


def epoch_line(h: dict) -> str:
    """The ``train.log`` line of one epoch's history dict."""
    parts = [f"epoch {h['epoch']}", f"{h['seconds']:.0f}s", f"loss {h['loss']:.4f}",
             f"clean {100 * h['clean']:.2f}%"]
    parts += [f"rob_{k} {100 * v:.2f}%" for k, v in h["robust"].items()]
    parts += [f"{k} {100 * v:.2f}%" for k, v in h.items() if k.startswith("test_")]
    parts.append(f"lr {h['lr']:.2e}")
    if h.get("best"):
        parts.append("best so far (best.safetensors)")
    return " | ".join(parts)
