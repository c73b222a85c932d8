"""A zoo model's card (markdown): recipe, training, measured numbers, published references.

:func:`card_text` builds it from the recipe, the training log (``advlab/zoo/logs/NAME.log``),
the stored results (``advlab/zoo/results/NAME*.json``) and the notes of :mod:`.card_notes`;
:func:`write_card` writes it to ``advlab/zoo/cards/NAME.md``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import CARDS, LOGS, ZooEntry, read_manifest
from .card_notes import MEASURE_NOTES, TRAINING_NOTES
from .measure import RESULTS
from .published import HEADLINE, PUBLISHED

__all__ = ["card_text", "description", "write_card"]


def description(name: str, manifest: dict[str, ZooEntry] | None = None) -> str:
    """One line for the manifest and the card: the manifest's description, else the recipe's
    notes."""
    entries = read_manifest() if manifest is None else manifest
    if name in entries and entries[name].description:
        return entries[name].description
    from ..train.recipes import RECIPES

    return RECIPES[name].notes if name in RECIPES else ""


def _log_facts(log: str) -> dict:
    secs = sum(float(m) for m in re.findall(r"^epoch \d+ \| (\d+)s", log, re.M))
    hw = re.search(r"^hardware: (.*)$", log, re.M)
    epochs = re.findall(r"^epoch (\d+) ", log, re.M)
    shipped = re.search(r"^shipped: (.*)$", log, re.M)
    return {"seconds": secs, "hardware": hw.group(1) if hw else "unknown",
            "shipped": shipped.group(1) if shipped else "",
            "epochs": int(epochs[-1]) if epochs else 0,
            "recipe": "\n".join(ln for ln in log.splitlines()[:12]
                                if ln.startswith(("recipe", "  ")))}


def _arch_line(arch: str) -> str:
    from ..models import ARCHITECTURES, build_model

    n = sum(p.numel() for p in build_model(arch).parameters())
    return f"advlab.models.{ARCHITECTURES[arch].__name__}, {n / 1e6:.2f}M parameters"


def _beside_published(res: dict) -> list[str]:
    """This model's row next to Maini et al.'s multi-perturbation rows and the paper's headline."""
    cols = ("clean", "linf", "l1", "l2", "union_lp")
    rows = [("this model (trusted evaluation, first "
             f"{res['n']} test images)", [f"{100 * res[c]:.1f}" for c in cols])]
    for key in ("mnist-max", "mnist-avg", "mnist-msd"):
        p = PUBLISHED[key]
        rows.append((p.label, [f"{p.values[c]:.1f}" for c in cols]))
    rows.append((HEADLINE.label, ["–"] * 4 + [f"{HEADLINE.values['union_lp']:.1f}"]))
    lines = ["## Beside the published multi-perturbation models", "",
             "| model | clean | l_inf 0.3 | l_1 10 | l_2 2 | union l_p |", "|" + "---|" * 6]
    lines += ["| " + " | ".join([label, *vals]) + " |" for label, vals in rows]
    return lines + ["", "Published rows as cited in `advlab.zoo.published`; Maini et al. measured "
                    "them with their own attack suite, not this one, and on another "
                    "architecture and training budget.", ""]


def write_card(name: str) -> Path:
    """Write ``card_text(name)`` to the model's card file; returns its path."""
    path = CARDS / f"{name}.md"
    CARDS.mkdir(parents=True, exist_ok=True)
    path.write_text(card_text(name))
    return path


HEAD = ("clean", "l_inf 0.3", "l_1 10", "l_2 2", "RT", "union l_p", "union all")


def card_text(name: str) -> str:
    """The model card (markdown) from the recipe, the training log and the stored results."""
    from ..train.recipes import get_recipe

    recipe = get_recipe(name)
    log_path = LOGS / f"{name}.log"
    facts = _log_facts(log_path.read_text()) if log_path.exists() else None
    res_path = RESULTS / f"{name}.json"
    res = json.loads(res_path.read_text()) if res_path.exists() else None
    out = _recipe_lines(name, recipe)
    if facts:
        out += _training_lines(name, facts)
    out += _measured_lines(name, res)
    if res and {a.threat for a in recipe.attacks} == {"linf", "l1", "l2"}:
        out += _beside_published(res)
    pub = PUBLISHED.get(name)
    if pub:
        vals = ", ".join(f"{k} {v}" for k, v in pub.values.items())
        out += ["## Published reference", "", f"{pub.label}: {vals}. Source: {pub.source}.", ""]
    return "\n".join(out)


def _recipe_lines(name: str, recipe) -> list[str]:
    """The card's title, description, recipe, architecture and how to reproduce it."""
    out = [f"# Model card: {name}", "", f"{description(name)}.", "", "## Recipe", "",
           "```", recipe.describe(), "```", "",
           f"Architecture: `{recipe.arch}` ({_arch_line(recipe.arch)}, fp32 safetensors). "
           "Threat model of the paper: l_inf 0.3, l_1 10, l_2 2, rotation-translation +-30 "
           "degrees / +-3 px.", "",
           f"Reproduce: `advlab train --recipe {name} --out runs/{name}` (same machine and thread "
           "count: same weights; `--resume` continues an interrupted run)"
           + (f", then `python -m advlab.zoo.publish {name} --run runs/{name}` (ships "
              "`best.safetensors`, the epoch with the best monitored union)"
              if recipe.monitor else "") + ".", ""]
    if recipe.init:
        out += [f"Fine-tuned from the zoo model `{recipe.init}` (its card gives its own training "
                "cost; the total cost of this model is both).", ""]
    return out


def _training_lines(name: str, facts: dict) -> list[str]:
    """The "Training" section from the log's facts and the run's notes."""
    out = ["## Training", "",
           f"- {facts['epochs']} epoch{'' if facts['epochs'] == 1 else 's'} in "
           f"{facts['seconds'] / 60:.1f} minutes",
           f"- hardware: {facts['hardware']}",
           f"- log: `advlab/zoo/logs/{name}.log`"]
    if facts.get("shipped"):
        out.append(f"- {facts['shipped']}")
    return out + [f"- {line}" for line in TRAINING_NOTES.get(name, [])] + [""]


def _table(r: dict) -> list[str]:
    """A results dict as a markdown table of accuracies (%), one row."""
    from .table import COLUMNS

    return ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD),
            "| " + " | ".join(f"{100 * r[c]:.1f}" for c in COLUMNS) + " |"]


def _how_measured(name: str, res: dict) -> str:
    """The command and the time of a stored result, as the card says them."""
    s, minutes = res.get("shards"), res["seconds"] / 60
    if res.get("timing") == "sum":  # python -m advlab.zoo.remeasure: slices one after another
        how = (f"measured by `python -m advlab.zoo.remeasure {name}` ({s} slices of "
               f"{res['n'] // s} images, one core each) in ")
        if res.get("reused") or res.get("partly_reused"):
            kept = [f"the {', '.join(res['reused'])} outcomes"] if res.get("reused") else []
            kept += ([f"those of {', '.join(res['partly_reused'])} on some slices"]
                     if res.get("partly_reused") else [])
            how = (" and ".join(kept) + " kept from an earlier measurement with the same "
                   "attacks for those threats, the rest " + how)
        if res.get("extended"):
            how = (f"the {', '.join(res['extended'])} outcomes of an earlier measurement kept "
                   "and only the attacks since appended to those stacks run on the images it "
                   "left standing; " + how)
        if "cpu_seconds" in res:  # CPU time does not grow with the machine's load
            how += (f"{res['cpu_seconds'] / 60:.1f} minutes of CPU time (the slices' sum; "
                    f"{minutes:.1f} minutes of wall time).")
        else:
            how += f"{minutes:.1f} minutes of one core (the slices' sum)."
        earlier = {t: v for t, v in res.get("earlier_breaks", {}).items() if v}
        if earlier:  # a found adversarial example is a proof: the image stays broken
            how += (" Images an earlier measurement of the same model broke count as broken: "
                    + ", ".join(f"{v} under {t}" for t, v in earlier.items())
                    + " that today's attacks, with their random starts, left standing.")
        return how
    shards = (f" (as {s} parallel processes: `--shard K/{s}` for each K, then `--merge {s}`)"
              if s else "")
    return f"measured by `{res['command']}`{shards} in {minutes:.1f} minutes (wall)."


def _filled(note: str, res: dict | None) -> str:
    """A measure note with its fields (``{l1}``, ``{best}``, ...: see ``card_notes``) filled in
    from the card's stored row and the zoo's best union."""
    if "{" not in note:
        return note
    from .table import COLUMNS, best_model, stored_result

    if res is None:
        raise ValueError(f"a measure note quotes stored numbers, but there are none: {note!r}")
    best = best_model("union_lp")
    fields = {c: f"{100 * res[c]:.1f}%" for c in COLUMNS if res.get(c) is not None}
    fields.update(best=f"`{best}`", best_union=f"{100 * stored_result(best)['union_lp']:.1f}%")
    return note.format_map(fields)


def _measured_lines(name: str, res: dict | None) -> list[str]:
    """The "Measured" section: the stored results (or none yet), their notes, extra ones."""
    out = ["## Measured", ""]
    if res:
        out += _table(res) + ["",
                f"Accuracy (%) on the first {res['n']} MNIST test images under the "
                f"\"{res['strength']}\" attacks of `advlab.presets` "
                f"({res.get('attacks', '')}); " + _how_measured(name, res), ""]
        if res["strength"] != "strong":
            out += ["Not yet the trusted (\"strong\") evaluation: these numbers are upper bounds "
                    "that the stronger attacks can only lower.", ""]
    else:
        out += ["Not evaluated yet.", ""]
    notes = [_filled(line, res) for line in MEASURE_NOTES.get(name, [])]
    out += notes + ([""] if notes else [])
    extra = sorted(p for p in RESULTS.glob(f"{name}.*.json") if ".shard-" not in p.name)
    for p in extra:
        r = json.loads(p.read_text())
        out += [f"Also measured, on the first {r['n']} test images with the \"{r['strength']}\" "
                f"attacks ({r.get('attacks', '')}), by `{r['command']}`:", ""]
        out += _table(r) + [""]
    return out
