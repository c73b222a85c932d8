"""The recipe -> cost -> accuracy table of ``docs/experiments/README.md``, from the repo's files.

Every zoo model (its recipe, its training log, its stored trusted result) and every run that did
not ship (``docs/experiments/results/NAME.json``: a stored result with the recipe it came from,
how it differed, its training time to the measured weights and, when early-stopped,
``epochs_used``) becomes one row, so a reader sees which ingredient
(steps, epochs, architecture, APGD in training, fine-tuning, early stopping) bought what.

It also tables what changes of the trusted stack did to each stored row (``CHANGE_BLOCKS``:
when the boundary attack joined under l_1, when FAB-T at the classes ranked 4th-9th joined under
l_inf and l_2, when AutoAttack's l_1 version, l1-APGD with a shrinking budget, joined under l_1,
when FAB-T from random starts joined under l_2 and l1-APGD with AutoAttack's sparsity under l_1,
when Square at 5000 queries joined the end of the l_inf and l_2 stacks),
from the history of "previous" rows that ``python -m advlab.zoo.remeasure``
keeps when it replaces one.

    python -m advlab.zoo.experiments            # rewrite the tables in docs/experiments/README.md
    python -m advlab.zoo.experiments --check    # exit 1 when the README's tables are stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..generated_blocks import spliced
from . import HERE, LOGS

__all__ = ["rows", "markdown", "stack_changes", "changes_markdown", "DOC", "EXPERIMENTS",
           "CHANGE_BLOCKS"]

DOC = HERE.parent.parent / "docs" / "experiments" / "README.md"
EXPERIMENTS = DOC.parent / "results"
#: the README's generated block -> the attack whose joining the stack it tables
CHANGE_BLOCKS = {"stack-changes": "BoundaryL1", "stack-changes-fab": "FABT targets 4-9",
                 "stack-changes-l1-shrink": "APGD 100 steps x 5 restarts at 3-2-1 x eps",
                 "stack-changes-fab-random-l0": "FABT 9 targets x 100 steps from random starts",
                 "stack-changes-square-final": "Square 5000 queries seed 1"}


def _attacks(recipe) -> str:
    if recipe.strategy == "standard":
        return "none"
    if recipe.strategy == "msd":
        return f"MSD {recipe.msd_steps} steps"
    kinds = {a.kind for a in recipe.attacks if a.kind != "random"}
    steps = {a.steps for a in recipe.attacks if a.kind != "random"}
    parts = []
    if kinds:
        parts.append(f"{'/'.join(sorted(kinds)).upper()}-{'/'.join(map(str, sorted(steps)))}")
    if any(a.kind == "random" for a in recipe.attacks):
        parts.append("RT worst-of-k")
    for a in recipe.attacks:
        if a.options_text():
            parts[0] += f" ({a.threat}: {a.options_text()})"
    return " + ".join(parts)


def _train_minutes(log: str) -> float:
    return sum(float(m) for m in re.findall(r"^epoch \d+ \| (\d+)s", log, re.M)) / 60


def _row(name: str, recipe, result: dict, minutes: float, status: str, note: str = "") -> dict:
    threats = "+".join(sorted({a.threat for a in recipe.attacks})) or "-"
    base = f" from `{recipe.init}`" if recipe.init else ""
    return {"run": name, "status": status, "strategy": f"{recipe.strategy} ({threats}){base}",
            "attacks": _attacks(recipe), "arch": recipe.arch, "epochs": recipe.epochs,
            "minutes": minutes, "note": note,
            **{k: result[k] for k in ("clean", "linf", "l1", "l2", "union_lp")}}


def _stored():
    """(name, stored trusted result) of every shipped zoo model that has one."""
    from . import available
    from .table import stored_result

    for name in available():
        try:
            yield name, stored_result(name)
        except LookupError:
            continue


def rows() -> list[dict]:
    """One row per zoo model with a stored trusted result, then one per experiment file."""
    from ..train.recipes import get_recipe

    out = []
    for name, res in _stored():
        log = LOGS / f"{name}.log"
        text = log.read_text() if log.exists() else ""
        minutes = _train_minutes(text) if text else float("nan")
        row = _row(name, get_recipe(name), res, minutes, "shipped")
        shipped = re.search(r"^shipped: best\.safetensors, the weights after epoch (\d+)", text,
                            re.M)
        if shipped and int(shipped[1]) < row["epochs"]:  # early-stopped (``shipping.publish``)
            row["epochs"] = f"{shipped[1]} of {row['epochs']}"
        out.append(row)
    for path in sorted(EXPERIMENTS.glob("*.json")) if EXPERIMENTS.exists() else []:
        e = json.loads(path.read_text())
        recipe = get_recipe(e["recipe"]).with_(**e.get("changes", {}))
        row = _row(path.stem, recipe, e, e["train_seconds"] / 60, "not shipped",
                   e.get("note", ""))
        if "epochs_used" in e:  # early-stopped: the weights of this many epochs
            row["epochs"] = f"{e['epochs_used']} of {recipe.epochs}"
        out.append(row)
    return out


def markdown(table_rows: list[dict] | None = None) -> str:
    """The table as markdown (accuracies in %, trusted evaluation, first 1000 test images)."""
    rs = rows() if table_rows is None else table_rows
    head = ["run", "status", "strategy", "training attacks", "arch", "epochs",
            "train (min, 2 CPU cores)", "clean", "l_inf", "l_1", "l_2", "union"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rs:
        accs = [f"{100 * r[k]:.1f}" for k in ("clean", "linf", "l1", "l2", "union_lp")]
        lines.append("| " + " | ".join(
            [f"`{r['run']}`", r["status"], r["strategy"], r["attacks"], r["arch"],
             str(r["epochs"]), f"{r['minutes']:.0f}", *accs]) + " |")
    notes = [f"- `{r['run']}`: {r['note']}" for r in rs if r["note"]]
    return "\n".join(lines + ([""] + notes if notes else []))


def _history(res: dict):
    """(newer, older) pairs of a stored result's rows, newest first: the result itself and its
    "previous" row, that row and its own "previous", and so on (``remeasure.previous_row``)."""
    newer = res
    while newer.get("previous"):
        yield newer, newer["previous"]
        newer = newer["previous"]


def stack_changes(attack: str | None = None) -> list[dict]:
    """Per zoo model whose stored result keeps a "previous" row (measured with other attacks):
    the attacks new to each threat's stack, the images they broke first, and the accuracies
    before and after. ``attack``: the change that brought an attack whose name is it or starts
    with it and a space (e.g. "BoundaryL1"), from the stored history; default the last change."""
    from .measure import threat_attacks

    out = []
    for name, res in _stored():
        current = threat_attacks(res["attacks"])
        for after, prev in _history(res):
            if prev.get("n") != res["n"]:
                break
            old, new = threat_attacks(prev["attacks"]), threat_attacks(after["attacks"])
            added = {t: [a for a in stack.split(", ") if a not in old.get(t, "").split(", ")]
                     for t, stack in new.items() if old.get(t) != stack}
            if attack is not None and not any(a == attack or a.startswith(attack + " ")
                                              for got in added.values() for a in got):
                continue
            # first breaks say what the new attacks found only where they came after the old
            # stack (appended); where they came earlier they take breaks the old ones would
            # find. Attacks appended since do not change them: they run on the survivors.
            firsts = {t: (sum(res.get("breaks", {}).get(t, {}).get(a, 0) for a in got)
                          if new[t].startswith(old.get(t, "\0") + ", ")
                          and (current.get(t, "") + ", ").startswith(new[t] + ", ") else None)
                      for t, got in added.items() if got}
            out.append({"model": name, "added": {t: a for t, a in added.items() if a},
                        "first_breaks": firsts, "before": prev,
                        "now": {k: after[k] for k in ("linf", "l1", "l2", "union_lp")}})
            break
    return out


def changes_markdown(changes: list[dict] | None = None, attack: str | None = None) -> str:
    """``stack_changes(attack)`` as markdown: accuracies in %, before -> after."""
    cs = stack_changes(attack) if changes is None else changes
    cols = ("linf", "l1", "l2", "union_lp")
    lines = ["| model | images the appended attacks broke | l_inf | l_1 | l_2 | union |",
             "|---|---|---|---|---|---|"]
    for c in cs:
        firsts = ", ".join(f"{n} ({t})" if n is not None else f"measured afresh ({t})"
                           for t, n in c["first_breaks"].items()) or "0"
        cells = [f"{100 * c['before'][k]:.1f} → {100 * c['now'][k]:.1f}" for k in cols]
        lines.append(f"| `{c['model']}` | {firsts} | " + " | ".join(cells) + " |")
    notes = [f"- `{c['model']}`, new since its previous row: "
             + "; ".join(f"{t}: {', '.join(a)}" for t, a in c["added"].items()) for c in cs]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m advlab.zoo.experiments", description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 if the README's table is stale")
    args = p.parse_args(argv)
    text = DOC.read_text()
    new = spliced(text, "experiments-table", markdown(), where=str(DOC))
    for block, attack in CHANGE_BLOCKS.items():
        new = spliced(new, block, changes_markdown(attack=attack), where=str(DOC))
    if args.check:
        if new != text:
            print(f"{DOC} is stale: run python -m advlab.zoo.experiments", file=sys.stderr)
            return 1
        return 0
    Path(DOC).write_text(new)
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
