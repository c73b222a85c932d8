"""The reproduction table: every zoo model under each MNIST threat and their union.

    from advlab.zoo.table import reproduction_table, format_table
    rows = reproduction_table(n=1000, strength="strong")     # the first 1000 MNIST test images
    print(format_table(rows))

Threats (the paper's MNIST budgets, ``advlab.presets``): l_inf 0.3, l_1 10, l_2 2, and
rotation-translation (+-30 degrees, +-3 px, the full 775-transform grid). "union l_p" is the
accuracy when the adversary picks l_inf, l_1 or l_2 per example (the union the published
numbers report); "union all" adds rotation-translation. Published numbers are listed for
reference, with their sources (``PUBLISHED``, from ``advlab.zoo.published``).
"""

from __future__ import annotations

import math
import time

import torch

# The published numbers have one home, advlab.zoo.published; these names stay importable here.
from .published import HEADLINE, MAINI, PUBLISHED, TRAMER, Published

__all__ = ["Published", "PUBLISHED", "HEADLINE", "MAINI", "TRAMER", "reproduction_table",
           "stored_rows", "stored_result", "best_model", "zoo_table", "evaluate_model",
           "format_table", "COLUMNS"]

COLUMNS = ("clean", "linf", "l1", "l2", "rt", "union_lp", "union_all")


def evaluate_model(model, data, strength: str = "strong", batch_size: int = 500,
                   progress: bool = False, keep_outcomes: bool = False, include=None) -> dict:
    """Accuracies (in [0, 1]) of ``model`` on ``data`` = (x, y) for every column of the table.

    ``keep_outcomes``: also "outcomes", which images survive each threat, packed small
    (``advlab.zoo.outcomes``), so later evaluations can be compared image by image, and
    "breaks": per threat, how many images each attack of the stack broke first.
    ``include``: only these threats (then "clean" and theirs, no union columns).
    """
    from ..device import fast_on_cpu
    from ..evaluation.presets import attacks
    from ..evaluation.union import evaluate_union

    model = fast_on_cpu(model)  # channels_last on a CPU; the caller's model unchanged
    stacks = attacks("mnist", strength, include=include)
    res = evaluate_union(model, data, stacks, batch_size=batch_size, progress=progress)
    out = res.as_dict()
    if include is None:
        lp = res.clean.clone()
        for name in ("linf", "l1", "l2"):
            lp &= res.robust[name]
        out["union_lp"] = lp.float().mean().item()
        out["union_all"] = out.pop("union")
    table = {k: out[k] for k in COLUMNS if k in out}  # with include: clean and its threats
    if keep_outcomes:
        from . import outcomes
        from .measure import describe_attack

        table["outcomes"] = outcomes.pack(outcomes.from_union(res))
        table["breaks"] = {
            name: dict(zip([describe_attack(a) for a in stack],
                           res.breaks(name) + [0] * len(stack), strict=False))
            for name, stack in stacks.items()}
    return table


def reproduction_table(models=None, n: int = 1000, strength: str = "strong",
                       device: str | None = None, progress: bool = False, log=None) -> list[dict]:
    """One row per zoo model: {"model", "seconds", "n", "strength", COLUMNS... (in [0, 1])}.

    models: names (default every shipped model). The first ``n`` MNIST test images. device:
    default the GPU when present, else the CPU (``advlab.device.pick_device``).
    """
    from ..data import mnist_tensors
    from ..device import pick_device
    from . import available, load

    device = pick_device(device)

    names = list(models) if models is not None else available()
    x, y = mnist_tensors(n, train=False)
    x, y = x.to(device), y.to(device)
    rows = []
    for name in names:
        t0 = time.time()
        acc = evaluate_model(load(name, device=device), (x, y), strength, progress=progress)
        row = {"model": name, "n": n, "strength": strength, **acc,
               "seconds": time.time() - t0}
        rows.append(row)
        if log is not None:
            log(f"{name}: " + ", ".join(f"{k} {100 * row[k]:.1f}" for k in COLUMNS))
    return rows


def stored_rows(models=None) -> list[dict]:
    """The rows measured by ``python -m advlab.zoo.publish NAME --evaluate`` (kept in the repo,
    ``advlab/zoo/results/NAME.json``), for every shipped model that has one."""
    import json

    from . import HERE, available

    rows = []
    for name in (list(models) if models is not None else available()):
        path = HERE / "results" / f"{name}.json"
        if path.exists():
            rows.append({"model": name, **json.loads(path.read_text())})
        for extra in sorted((HERE / "results").glob(f"{name}.*.json")):
            if ".shard-" not in extra.name:
                r = json.loads(extra.read_text())
                rows.append({**r, "model": f"{name} ({r['strength']}, first {r['n']})"})
    return rows


def best_model(column: str = "union_lp", models=None) -> str:
    """The shipped model with the highest stored trusted accuracy in ``column`` (e.g.
    "union_lp": the best multi-perturbation model). Notebooks ask this instead of naming one."""
    rows = [r for r in stored_rows(models)
            if r.get("strength") == "strong" and "(" not in r["model"]]
    if not rows:
        raise LookupError("no stored trusted results; run python -m advlab.zoo.publish --evaluate")
    return max(rows, key=lambda r: r[column])["model"]


def stored_result(name: str) -> dict:
    """The stored trusted row of one shipped model (fractions in [0, 1]; keys as COLUMNS)."""
    rows = [r for r in stored_rows([name]) if r["model"] == name]
    if not rows:
        raise LookupError(f"no stored result for {name!r}; models with one: "
                          f"{[r['model'] for r in stored_rows()]}")
    return rows[0]


def zoo_table(measure: bool = False, models=None, n: int = 1000, strength: str = "strong",
              **kwargs) -> str:
    """The reproduction table as markdown, for notebooks: the stored measurements by default,
    or measured now with ``measure=True`` (minutes per model on a CPU)."""
    rows = (reproduction_table(models, n=n, strength=strength, **kwargs) if measure
            else stored_rows(models))
    return format_table(rows)


def _pct(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{100 * v:.1f}"


def older_stack(rows: list[dict]) -> list[str]:
    """The "strong" rows measured with other attacks than today's strong stack (stale)."""
    from .measure import stack_description

    today = stack_description("strong")
    return [r["model"] for r in rows if r["strength"] == "strong" and "attacks" in r
            and r["attacks"] != today]


def format_table(rows: list[dict], published: bool = True) -> str:
    """Markdown: the measured accuracies (%) and, below, the published ones (cited)."""
    head = ["model", "clean", "l_inf", "l_1", "l_2", "RT", "union l_p", "union all"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["model"]] + [_pct(r[c]) for c in COLUMNS]) + " |")
    for how in sorted({(r["n"], r["strength"]) for r in rows}):
        names = ", ".join(r["model"] for r in rows if (r["n"], r["strength"]) == how)
        lines.append("")
        lines.append(f"{names}: measured on the first {how[0]} MNIST test images with the "
                     f"\"{how[1]}\" attacks of advlab.presets.")
    older = older_stack(rows)
    if older:
        lines += ["", f"**Measured with older attacks** for {', '.join(older)}: with a "
                  "weaker stack than today's trusted one (each card lists the attacks of its "
                  "row), so these rows are upper bounds until `python -m advlab.zoo.remeasure` "
                  "measures them again."]
    weak = [r["model"] for r in rows if r["strength"] != "strong" and "(" not in r["model"]]
    if weak:
        lines += ["", f"**Not the trusted evaluation** for {', '.join(weak)}: PGD alone "
                  "(no APGD, no gradient-free attack) gives upper bounds, and gradient masking "
                  "can inflate them a lot (an l_inf-trained model's l_1 and l_2 numbers above "
                  "all; see its model card). Re-measure with `--strength strong`."]
    if published:
        lines += ["", "Published, for reference (not measured here):", "",
                  "| zoo counterpart | published model | clean | l_inf | l_1 | l_2 | RT | "
                  "union l_p | union all |", "|" + "---|" * 9]
        pubs = [(name, p) for name, p in PUBLISHED.items()] + [("mnist-max / mnist-avg",
                                                                 HEADLINE)]
        for name, pub in pubs:
            vals = ["–" if pub.values.get(c) is None else f"{pub.values[c]:.1f}" for c in COLUMNS]
            lines.append("| " + " | ".join([name, pub.label] + vals) + " |")
        lines += ["", f"Maini et al.: {MAINI}. Tramèr & Boneh: {TRAMER}: multi-perturbation "
                  "adversarial training on MNIST reaches \"merely "
                  f"{HEADLINE.values['union_lp']:.0f}%\" accuracy against the union of l_inf, "
                  "l_1 and l_2 attacks."]
    return "\n".join(lines)


def cpu_hardware() -> str:
    import platform

    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"
