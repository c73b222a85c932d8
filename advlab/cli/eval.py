"""``advlab eval``: zoo models (or yours) under each MNIST threat and their union, live.

    advlab eval                                   # mnist-linf and the zoo's best union model
    advlab eval --zoo mnist-l1,mnist-l2 --n 200   # other zoo models, more images
    advlab eval --checkpoint model.safetensors    # your own weights
    advlab eval --train                           # train a standard CNN for one epoch first
    advlab eval --search-dtype bfloat16           # attacks search in bf16 (faster with native bf16)

Every argument is checked before any work starts. Nothing here imports torch before the
arguments are parsed, so ``advlab eval --help`` answers at once.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..evaluation.strengths import NAMES as STRENGTHS
from .common import UsageError, checked_device, int_range

__all__ = ["register", "run", "plan", "evaluate_models", "report", "trusted_command", "write_json",
           "DEFAULT_N", "THREATS", "STRENGTHS", "LABELS", "SEARCH_DTYPE_NAMES"]

# the first N test images by default: two models under the lite attacks in about a minute on
# 2 idle CPU cores (benchmarks/startup.py measures it)
DEFAULT_N = 50  # sized for well under a minute on 2 idle CPU cores: benchmarks/startup.py
THREATS = ("linf", "l1", "l2", "rt")  # advlab.presets.threats("mnist"), without importing it
LABELS = {"clean": "clean", "linf": "l_inf", "l1": "l_1", "l2": "l_2", "rt": "RT",
          "union_lp": "union l_p", "union_all": "union all", "union": "union"}
SEARCH_DTYPE_NAMES = ("float32", "bfloat16", "float16")  # advlab.device.SEARCH_DTYPES' names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="per-threat and union accuracy of zoo models (or yours) on MNIST",
        description="Attack models with the paper's threat models (l_inf 0.3, l_1 10, l_2 2, "
        "rotation-translation) and print clean, per-threat and union accuracy, beside the "
        "zoo's stored trusted evaluation and the published numbers. Without --zoo, "
        "--checkpoint or --train: mnist-linf and the zoo's best multi-perturbation model "
        f"(highest stored union l_p accuracy) on the first {DEFAULT_N} test images, in about "
        "a minute on 2 CPU cores.",
        epilog=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--zoo", metavar="NAME[,NAME]",
                     help="zoo models, comma-separated (default: mnist-linf and the best union "
                     "model; `advlab zoo list` shows them)")
    src.add_argument("--checkpoint", metavar="FILE", help="a .safetensors state dict")
    src.add_argument("--train", action="store_true",
                     help="first train a standard CompactCNN for one epoch, then evaluate it")
    p.add_argument("--arch", default=None, help="architecture of --checkpoint (compact-cnn)")
    p.add_argument("--n", type=int_range(1, 10000), default=DEFAULT_N,
                   help=f"first N test images, 1..10000 (default {DEFAULT_N})")
    p.add_argument("--strength", default="lite", choices=STRENGTHS,
                   help="attack strength (default lite: APGD, PGD and Square with few steps; "
                   "'strong' is the trusted evaluation; 'fast' and 'standard' are PGD only)")
    p.add_argument("--threats", default=None,
                   help=f"comma-separated subset of {','.join(THREATS)} (default all)")
    p.add_argument("--train-n", type=int_range(1, 60000), default=None,
                   help="with --train: training images (default 60000)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: GPU if present)")
    p.add_argument("--data", default=None,
                   help="a folder that holds MNIST/raw/ (no download; default: $ADVLAB_DATA, "
                   "else ~/.advlab/data, downloaded on first use)")
    p.add_argument("--seed", type=int, default=0, help="with --train: the seed (default 0)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the accuracies, and which images survive each threat, as "
                   "JSON (compare two with `advlab zoo compare`)")
    p.add_argument("--search-dtype", default="float32", choices=SEARCH_DTYPE_NAMES,
                   help="precision of the attacks' passes (default float32); bfloat16 took "
                   "0.62x the CPU time on a CPU with native bf16 "
                   "(benchmarks/search_precision.py), and every example it finds is still "
                   "checked in float32")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _threats(args) -> list[str]:
    if args.threats is None:
        return list(THREATS)
    names = _names(args.threats)
    bad = [t for t in names if t not in THREATS]
    if bad or not names:
        raise UsageError(f"--threats: unknown threats {bad or [args.threats]}; "
                         f"choose from {', '.join(THREATS)} (comma-separated)")
    return names


def _zoo_models(args) -> list[str]:
    from .. import zoo

    if args.zoo is None:
        from ..zoo.table import best_model

        best = best_model("union_lp")
        return ["mnist-linf"] + ([best] if best != "mnist-linf" else [])
    names = _names(args.zoo)
    for name in names or [args.zoo]:
        if name not in zoo.REGISTRY:
            raise UsageError(f"--zoo: unknown zoo model {name!r}; "
                             f"shipped: {', '.join(zoo.available())}")
    return names


def _check_paths(args) -> None:
    if not args.checkpoint and args.arch:
        raise UsageError("--arch only applies to --checkpoint FILE")
    if not args.train and (args.train_n is not None or args.seed != 0):
        raise UsageError("--train-n and --seed only apply with --train")
    if args.checkpoint:
        path = Path(args.checkpoint)
        if not path.is_file():
            raise UsageError(f"--checkpoint {path}: no such file")
        if path.suffix != ".safetensors":
            raise UsageError(f"--checkpoint {path}: expected a .safetensors state dict "
                             "(save one with safetensors.torch.save_file(model.state_dict(), ...))")
        from ..models import ARCHITECTURES

        if (args.arch or "compact-cnn") not in ARCHITECTURES:
            raise UsageError(f"--arch {args.arch!r}: unknown; choose one of "
                             f"{', '.join(sorted(ARCHITECTURES))}")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise UsageError(f"--json {args.json}: the folder {Path(args.json).parent} does not exist")
    if args.data and not Path(args.data).expanduser().is_dir():
        raise UsageError(f"--data {args.data}: no such folder (it must contain MNIST/raw/)")


def plan(args: argparse.Namespace) -> dict:
    """Every argument checked, nothing run yet: {"threats", "models" (zoo names or None),
    "device"}. Raises ``UsageError`` (one line, what to do) on the first bad one."""
    threats = _threats(args)
    _check_paths(args)
    models = None if (args.checkpoint or args.train) else _zoo_models(args)
    return {"threats": threats, "models": models, "device": checked_device(args.device)}


def run(args: argparse.Namespace) -> int:
    todo = plan(args)
    from ..data import mnist_tensors

    t0 = time.perf_counter()
    # the data are found before any training; a --data folder must hold them (no download)
    x, y = mnist_tensors(args.n, train=False, root=args.data, download=args.data is None)
    models = _load_models(args, todo)
    results = evaluate_models(models, (x, y), todo, args.strength, not args.no_progress,
                              search_dtype=args.search_dtype)
    print(report(results, args, todo, time.perf_counter() - t0))
    if args.json:
        write_json(args.json, results, args)
    return 0


def _load_models(args, todo) -> list[tuple[str, object]]:
    """[(label, model in eval mode on the device)], each checked against --search-dtype."""
    models = _loaded(args, todo)
    if args.search_dtype != "float32":
        from ..device import LowPrecision, parse_search_dtype

        dtype = parse_search_dtype(args.search_dtype)
        for label, model in models:
            try:
                LowPrecision(model, dtype)
            except ValueError as err:
                raise UsageError(f"--search-dtype {args.search_dtype}, {label}: {err}") from None
    return models


def _loaded(args, todo) -> list[tuple[str, object]]:
    device = todo["device"]
    if todo["models"] is not None:
        from .. import zoo

        return [(name, zoo.load(name, device=device)) for name in todo["models"]]
    if args.checkpoint:
        from safetensors.torch import load_file

        from ..models import build_model

        model = build_model(args.arch or "compact-cnn")
        try:
            model.load_state_dict(load_file(args.checkpoint))
        except Exception as err:  # a file of another architecture or not safetensors at all
            raise UsageError(f"--checkpoint {args.checkpoint}: not a state dict of "
                             f"{args.arch or 'compact-cnn'} ({str(err).splitlines()[0]})") from err
        return [(args.checkpoint, model.to(device).eval())]
    return [("standard CompactCNN (1 epoch)", _trained(args, device))]


def _trained(args, device):
    import torch

    from ..data import mnist_tensors
    from ..models import build_model
    from ..train.basic import fit

    n = args.train_n or 60000
    x, y = mnist_tensors(n, train=True, root=args.data, download=args.data is None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        model = build_model("compact-cnn")
    t0 = time.perf_counter()
    fit(model.to(device), x.to(device), y.to(device), epochs=1, seed=args.seed)
    print(f"trained a standard CompactCNN on {n} images in {time.perf_counter() - t0:.0f} s")
    return model.eval()


# ----------------------------------------------------------------------------- evaluation


def evaluate_models(models, data, todo: dict, strength: str, progress: bool = True,
                    search_dtype: str = "float32") -> list:
    """[(label, accuracies)] for each (label, model): "clean", each threat, "union" and, when
    l_inf, l_1 and l_2 are all evaluated, "union_lp"; fractions in [0, 1]; and "outcomes",
    which images survive each threat (``advlab.zoo.outcomes.pack``).

    Each threat attacks every clean-correct example (as ``evaluate_union(per_threat=True)``),
    one threat at a time so that the bar moves once per model and threat; the union is the
    per-example AND over the threats, exactly what one call with all of them gives.
    ``search_dtype``: the attacks' precision (``evaluate_union``'s; breaks checked in float32).
    """
    from tqdm.auto import tqdm

    from ..device import fast_on_cpu
    from ..evaluation.presets import attacks
    from ..evaluation.union import evaluate_union

    device = todo["device"]
    x, y = (t.to(device) for t in data)
    stacks = attacks("mnist", strength, include=todo["threats"])
    out = []
    with tqdm(total=len(models) * len(stacks), disable=not progress, unit="attack",
              desc="advlab eval") as bar:
        for label, model in models:
            model = fast_on_cpu(model)  # faster convolutions; the caller's model unchanged
            robust, clean = {}, None
            for name, stack in stacks.items():
                bar.set_postfix_str(f"{label}: {LABELS[name]}")
                res = evaluate_union(model, (x, y), {name: stack}, progress=False,
                                     keep_worst=False, search_dtype=search_dtype)
                robust[name], clean = res.robust[name], res.clean
                bar.update(1)
            acc = _accuracies(clean, robust)
            acc["outcomes"] = _outcomes(clean, robust)
            out.append((label, acc))
    return out


def _outcomes(clean, robust: dict) -> dict:
    """Which images survive each threat, packed as the zoo's stored results keep them."""
    from ..zoo import outcomes

    return outcomes.pack({"clean": clean.bool().cpu(),
                          **{k: (v & clean).bool().cpu() for k, v in robust.items()}})


def _accuracies(clean, robust: dict) -> dict:
    def mean(mask) -> float:
        return mask.float().mean().item()

    union = clean.clone()
    for mask in robust.values():
        union &= mask
    acc = {"clean": mean(clean), **{k: mean(v) for k, v in robust.items()}, "union": mean(union)}
    if all(t in robust for t in ("linf", "l1", "l2")):
        acc["union_lp"] = mean(clean & robust["linf"] & robust["l1"] & robust["l2"])
    return acc


# --------------------------------------------------------------------------------- report


def _columns(threats: list[str]) -> list[str]:
    cols = ["clean", *threats]
    lp = all(t in threats for t in ("linf", "l1", "l2"))
    if lp and len(threats) > 3:
        return cols + ["union_lp", "union_all"]
    return cols + (["union_lp"] if lp else ["union"])


def _live(acc: dict, col: str):
    return acc["union"] if col == "union_all" else acc.get(col)


def _rows(label: str, acc: dict, cols: list[str], args) -> list[list[str]]:
    """The live row, then (zoo models) the stored trusted row and the published one."""
    from ..zoo.table import PUBLISHED, stored_rows

    def cells(get) -> list[str]:
        vals = [get(c) for c in cols]
        return ["–" if v is None else f"{v:5.1f}" for v in vals]

    rows = [[label, f"live: {args.strength}, first {args.n}"]
            + cells(lambda c: None if _live(acc, c) is None else 100 * _live(acc, c))]
    stored = [r for r in stored_rows([label]) if r["model"] == label] if not args.checkpoint \
        and not args.train else []
    if stored:
        r = stored[0]
        rows.append(["", f"stored: {r['strength']}, first {r['n']}"]
                    + cells(lambda c: None if r.get(c) is None else 100 * r[c]))
    pub = None if (args.train or args.checkpoint) else PUBLISHED.get(label) or _headline(label)
    if pub is not None:
        rows.append(["", f"published: {pub.label}"] + cells(pub.values.get))
    return rows


def _headline(label: str):
    """The paper's headline (union 50%) for the zoo's best union model when no published
    model corresponds to it one to one."""
    from ..zoo.table import HEADLINE, best_model

    return HEADLINE if label == best_model("union_lp") else None


def _table(results, cols: list[str], args) -> str:
    head = ["model", "row"] + [LABELS[c] for c in cols]
    body = [row for label, acc in results for row in _rows(label, acc, cols, args)]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in body])


def report(results, args, todo: dict, seconds: float) -> str:
    """The side-by-side table (accuracy in %), what it means, and the trusted command."""
    from ..zoo.table import MAINI, TRAMER

    cols = _columns(todo["threats"])
    search = "" if args.search_dtype == "float32" else f" searching in {args.search_dtype}"
    lines = [f"MNIST, first {args.n} test images, {args.strength} attacks{search}, on "
             f"{todo['device']} ({seconds:.0f} s)", "", _table(results, cols, args), ""]
    if args.strength != "strong":
        lines.append(f"Live numbers are upper bounds: {args.strength} attacks on {args.n} "
                     "images. The stored rows (the trusted evaluation, 1000 images) are the ones "
                     "to quote; the live ones are upper bounds of them, up to sampling noise.")
    else:
        lines.append("Robust accuracies are upper bounds: the strongest attacks advlab runs.")
    if todo["models"] is not None:
        lines.append(f"Published: {MAINI}; {TRAMER}.")
    lines += ["", f"The trusted evaluation{_trusted_time(todo)}:",
              "  " + trusted_command(args, todo)]
    return "\n".join(lines)


def _trusted_time(todo: dict) -> str:
    """How long the stored trusted evaluations of these zoo models took, as they record it."""
    from ..zoo.table import stored_rows

    if todo["models"] is None:
        return " (minutes to an hour per model on a CPU)"
    rows = [r for r in stored_rows(todo["models"])
            if r["model"] in todo["models"] and "seconds" in r]
    took = [f"{r['model']} {r['seconds'] / 60:.0f} min" for r in rows]
    if not took:
        return ""
    if any(r.get("reused") or r.get("extended") for r in rows):  # a re-measurement ran part
        return (f" (the stored rows' last re-measurement took {', '.join(took)} for the attacks "
                "it ran; the whole stack takes longer, up to an hour per model on a CPU)")
    return f" (the stored runs took {', '.join(took)})"


def trusted_command(args, todo: dict) -> str:
    """The same evaluation with the "strong" attacks on 1000 images."""
    if todo["models"] is not None:
        src = f"--zoo {','.join(todo['models'])}"
    elif args.checkpoint:
        src = f"--checkpoint {args.checkpoint}" + (f" --arch {args.arch}" if args.arch else "")
    else:
        src = "--train" + (f" --train-n {args.train_n}" if args.train_n else "")
    threats = f" --threats {args.threats}" if args.threats else ""
    return f"advlab eval {src} --strength strong --n 1000{threats}"


def write_json(path: str, results, args) -> None:
    import json

    with open(path, "w") as f:
        json.dump({"strength": args.strength, "n": args.n, "search_dtype": args.search_dtype,
                   "models": [{"model": label,
                               "accuracy": {k: v for k, v in acc.items() if k != "outcomes"},
                               "outcomes": acc["outcomes"]} for label, acc in results]},
                  f, indent=2)
