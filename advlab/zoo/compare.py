"""Two evaluations of the first test images, compared image by image (``advlab zoo compare``).

Either side is a zoo model's stored result (``advlab/zoo/results/NAME.json``), a results file
of the same form (``python -m advlab.zoo.publish ... --suffix``, ``docs/experiments/results``)
or an ``advlab eval --json`` file. Both evaluated the first n MNIST test images in order, so
they are compared on the first min(n_a, n_b).

    from advlab.zoo import compare
    a = compare.load("mnist-msd")                   # an Evaluation
    b = compare.load("runs/eval.json", model="mnist-msd")
    print(compare.report(a, b))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import outcomes

__all__ = ["Evaluation", "load", "rows", "report"]


@dataclass(frozen=True)
class Evaluation:
    """Which of the first ``n`` test images survive each threat (``survive``: name -> (n,) bool),
    and where that was measured (``label``: file and model; ``how``: strength and n)."""

    label: str
    how: str
    survive: dict

    @property
    def n(self) -> int:
        return next(iter(self.survive.values())).numel()


def load(source: str, model: str | None = None) -> Evaluation:
    """A zoo model name (its stored result) or a JSON file; ``model`` picks one model of an
    ``advlab eval --json`` file that holds several. Raises ValueError saying what to do."""
    from . import available
    from .measure import RESULTS

    path = Path(source)
    if not path.is_file():
        if source not in available():
            raise ValueError(f"{source!r} is neither a file nor a shipped zoo model "
                             "(advlab zoo list)")
        path = RESULTS / f"{source}.json"
        if not path.is_file():
            raise ValueError(f"{source} has no stored result; measure it with "
                             f"`python -m advlab.zoo.publish {source} --evaluate`")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a JSON results file ({err})") from err
    label, entry = _entry(data, path, source, model)
    if "outcomes" not in entry:
        hint = (f"; re-measure it with `python -m advlab.zoo.publish {path.stem} --evaluate`"
                if path.resolve().parent == RESULTS.resolve() else "")
        raise ValueError(f"{path} holds no per-image outcomes (it predates them){hint}")
    how = f"{data.get('strength', '?')}, first {entry['outcomes']['n']}"
    return Evaluation(label, how, outcomes.unpack(entry["outcomes"]))


def _entry(data: dict, path: Path, source: str, model: str | None) -> tuple[str, dict]:
    if "models" not in data:  # a zoo results file: one model
        if model is not None:
            raise ValueError(f"{path} holds one model's result; drop --model")
        return (source if source == path.stem else str(path)), data
    names = [m["model"] for m in data["models"]]
    if model is None and len(names) == 1:
        model = names[0]
    if model not in names:
        raise ValueError(f"{path} holds models {names}; pick one with --model NAME")
    return f"{path} ({model})", data["models"][names.index(model)]


def rows(a: Evaluation, b: Evaluation) -> list[dict]:
    """Per outcome both hold, and the unions: accuracy under each and the images only one
    breaks, on the first min(a.n, b.n) images."""
    n = min(a.n, b.n)
    sa = {k: v[:n] for k, v in a.survive.items()}
    sb = {k: v[:n] for k, v in b.survive.items()}
    names = [k for k in sa if k in sb]
    if not names:
        raise ValueError(f"the two evaluations share no threat ({sorted(sa)} vs {sorted(sb)})")
    sa = {k: sa[k] for k in names}
    sb = {k: sb[k] for k in names}
    acc_a, acc_b = outcomes.accuracies(sa), outcomes.accuracies(sb)
    unions = _unions(sa), _unions(sb)
    diff = outcomes.differences({**sa, **unions[0]}, {**sb, **unions[1]})
    return [{"name": k, "n": n, "a": acc_a[k], "b": acc_b[k],
             "only_a_breaks": diff[k]["only_a_breaks"], "only_b_breaks": diff[k]["only_b_breaks"]}
            for k in [*names, *unions[0]] if k in acc_a]


def _unions(survive: dict) -> dict:
    """The union masks to compare: union_all only when it differs from union_lp."""
    if "clean" not in survive:
        return {}
    out = outcomes.unions(survive)
    if set(survive) - {"clean"} <= set(outcomes.LP):
        out.pop("union_all", None)
    return out


def report(a: Evaluation, b: Evaluation, show: int = 10) -> str:
    """The comparison as text: one line per threat, the first ``show`` differing images."""
    table = rows(a, b)
    n = table[0]["n"]
    lines = [f"A: {a.label} ({a.how})", f"B: {b.label} ({b.how})",
             f"compared on the first {n} MNIST test images", "",
             f"{'':<10} {'A %':>6} {'B %':>6}  {'only A breaks':>13}  {'only B breaks':>13}"]
    for r in table:
        lines.append(f"{r['name']:<10} {100 * r['a']:6.1f} {100 * r['b']:6.1f}  "
                     f"{len(r['only_a_breaks']):>13}  {len(r['only_b_breaks']):>13}")
    for r in table:
        for side in ("a", "b"):
            idx = r[f"only_{side}_breaks"]
            if idx:
                more = f" (+{len(idx) - show} more)" if len(idx) > show else ""
                lines.append(f"  {r['name']}: only {side.upper()} breaks images "
                             f"{', '.join(map(str, idx[:show]))}{more}")
    return "\n".join(lines)
