"""Measure a shipped zoo model and keep the numbers: ``advlab/zoo/results/NAME.json``.

:func:`evaluate` runs the evaluation of a strength (``advlab.zoo.table.evaluate_model``) on the
first N MNIST test images, or on one of S equal slices of them (run the S slices in parallel
processes, then :func:`merge`).
"""

from __future__ import annotations

import json
import time

from . import HERE, refresh

__all__ = ["RESULTS", "command", "describe_attack", "evaluate", "measure", "merge",
           "stack_description", "threat_attacks"]

RESULTS = HERE / "results"


def measure(name: str, n: int, strength: str, shard: tuple[int, int] = (0, 1),
            suffix: str = "", device: str | None = None, include=None) -> dict:
    """The numbers ``evaluate`` keeps, measured and returned, not written (see ``evaluate``).
    ``include``: only these threats ("clean" and theirs; "attacks" quotes only theirs)."""
    import advlab.zoo as zoo

    refresh()  # the manifest may have been rewritten since this process read it
    from ..data import mnist_tensors
    from ..device import pick_device
    from .table import evaluate_model

    k, s = shard
    if n % s or not 0 <= k < s:
        raise ValueError(f"need 0 <= k < s and s dividing n, got shard {k}/{s} of {n}")
    dev = pick_device(device)
    x, y = mnist_tensors(n, train=False)
    lo, hi = k * n // s, (k + 1) * n // s
    t0, c0 = time.time(), time.process_time()
    acc = evaluate_model(zoo.load(name, device=dev), (x[lo:hi].to(dev), y[lo:hi].to(dev)),
                         strength, progress=False, keep_outcomes=True, include=include)
    res = {**acc, "n": n, "strength": strength, "seconds": time.time() - t0,
           "cpu_seconds": time.process_time() - c0,  # this process's CPU time, load or not
           "attacks": stack_description(strength, include),
           "command": command(name, n, strength, suffix)}
    if s > 1:
        res["slice"] = [lo, hi]
    return res


def command(name: str, n: int, strength: str, suffix: str = "") -> str:
    """The command a stored result quotes: the one that measures it in one process."""
    return (f"python -m advlab.zoo.publish {name} --evaluate --strength {strength} --n {n}"
            + (f" --suffix {suffix}" if suffix else ""))


def stack_description(strength: str, include=None) -> str:
    """How the results quote the attacks of a strength (e.g. to tell a stale result), per
    threat: "linf: APGD 100 steps, ...; l1: ...". ``include``: only these threats."""
    from ..evaluation.presets import attacks

    return "; ".join(f"{k}: {', '.join(describe_attack(a) for a in v)}"
                     for k, v in attacks("mnist", strength, include=include).items())


def threat_attacks(description: str) -> dict[str, str]:
    """``stack_description``'s text -> {threat: its attacks}."""
    return dict(part.split(": ", 1) for part in description.split("; ") if ": " in part)


def evaluate(name: str, n: int, strength: str, shard: tuple[int, int] = (0, 1),
             suffix: str = "", device: str | None = None) -> dict:
    """Measure the shipped model; keep the numbers in advlab/zoo/results/NAME.json.

    ``shard=(k, s)`` measures only the k-th of s equal slices of the n images (run the s slices
    in parallel processes, then ``merge``); its numbers go to NAME.shard-k-of-s.json.
    ``suffix``: keep the numbers in NAME{suffix}.json instead (an extra measurement, shown on
    the card but not in the table). ``device``: default the GPU when present, else the CPU.
    """
    res = measure(name, n, strength, shard, suffix, device)
    k, s = shard
    name = name + suffix
    RESULTS.mkdir(parents=True, exist_ok=True)
    if s == 1:
        (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    else:
        (RESULTS / f"{name}.shard-{k}-of-{s}.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def merge(name: str, s: int, suffix: str = "", folder=None, seconds=max, out=None) -> dict:
    """Merge the s shard results of ``name`` (equal slices, in ``folder``, default the results
    folder) into NAME.json (in ``out``, default the results folder). ``seconds``: how the
    slices' times combine (max: they ran in parallel; sum: one after another)."""
    from .table import COLUMNS

    name = name + suffix
    paths = [(folder or RESULTS) / f"{name}.shard-{k}-of-{s}.json" for k in range(s)]
    parts = [json.loads(p.read_text()) for p in paths]
    res = dict(parts[0])
    res.pop("slice", None)
    for c in COLUMNS:
        res[c] = sum(p[c] for p in parts) / s
    res["seconds"] = seconds(p["seconds"] for p in parts)
    if all("cpu_seconds" in p for p in parts):
        res["cpu_seconds"] = sum(p["cpu_seconds"] for p in parts)
    else:
        res.pop("cpu_seconds", None)
    if all("outcomes" in p for p in parts):
        from .outcomes import concat

        res["outcomes"] = concat([p["outcomes"] for p in parts])
    if all("breaks" in p for p in parts):  # the threats and attacks every slice counted
        res["breaks"] = {t: {a: sum(p["breaks"][t][a] for p in parts) for a in stack
                             if all(a in p["breaks"][t] for p in parts)}
                         for t, stack in parts[0]["breaks"].items()
                         if all(t in p["breaks"] for p in parts)}
    if any("earlier_breaks" in p for p in parts):  # images only earlier attacks broke
        threats_ = dict.fromkeys(t for p in parts for t in p.get("earlier_breaks", {}))
        res["earlier_breaks"] = {t: sum(p.get("earlier_breaks", {}).get(t, 0) for p in parts)
                                 for t in threats_}
    some = {t for p in parts for t in p.get("reused", [])}  # kept from earlier, per slice
    every = {t for t in some if all(t in p.get("reused", []) for p in parts)}
    res.pop("reused", None)
    res.pop("partly_reused", None)
    if every:
        res["reused"] = sorted(every)
    if some - every:
        res["partly_reused"] = sorted(some - every)
    extended = sorted({t for p in parts for t in p.get("extended", [])})
    res.pop("extended", None)
    if extended:  # only the attacks appended to these threats' stacks ran (remeasure.extend)
        res["extended"] = extended
    res["shards"] = s
    res["timing"] = "parallel" if seconds is max else "sum"  # how the card quotes the time
    (out or RESULTS).mkdir(parents=True, exist_ok=True)
    ((out or RESULTS) / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    for p in paths:
        p.unlink(missing_ok=True)
    return res


def describe_attack(attack) -> str:
    """How an attack of ``advlab.presets`` is quoted in the results: kind, steps, restarts."""
    th = getattr(attack, "threat", None)
    if th is not None and hasattr(attack, "queries"):  # a second run says its seed
        seed = f" seed {attack.seed}" if getattr(attack, "seed", 0) else ""
        return f"{type(attack).__name__} {attack.queries} queries{seed}"
    if th is not None and hasattr(attack, "steps"):
        kind = type(attack).__name__
        restarts = getattr(attack, "restarts", 1)
        scales = tuple(getattr(attack, "eps_scales", (1.0,)))
        at = (" at " + "-".join(f"{s:g}" for s in scales) + " x eps") if scales != (1.0,) else ""
        if getattr(attack, "sparsity", "mass") == "l0":  # AutoAttack's l1-APGD sparsity
            at += " with L0 sparsity"
        if getattr(attack, "skip", 0):  # the classes ranked skip+1 to targets
            return f"{kind} targets {attack.skip + 1}-{attack.targets} x {attack.steps} steps"
        if hasattr(attack, "targets"):
            more = (f" x {restarts} restarts" if restarts > 1 else "") + (
                " from random starts" if getattr(attack, "random_start", False) else "")
            return f"{kind} {attack.targets} targets x {attack.steps} steps{more}{at}"
        if getattr(attack, "loss", "ce") != "ce":  # APGD with the DLR loss: "APGD-DLR"
            kind = f"{kind}-{attack.loss.upper()}"
        return (f"{kind} {attack.steps} steps" + (f" x {restarts} restarts" if restarts > 1 else "")
                + at)
    kw = getattr(attack, "keywords", {})
    if "threat" in kw:
        t = kw["threat"]
        return f"grid {t.n_rot} x {t.n_trans} x {t.n_trans}"
    return type(attack).__name__
