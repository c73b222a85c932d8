"""``advlab zoo list``, ``advlab zoo table`` (the reproduction table of the zoo) and
``advlab zoo compare`` (two evaluations, image by image).

    advlab zoo list
    advlab zoo table --n 1000 --strength strong --out advlab/zoo/TABLE.md
    advlab zoo table --stored --out advlab/zoo/TABLE.md --splice README.md   # after a remeasure
    advlab eval --zoo mnist-msd --n 200 --json run.json && advlab zoo compare mnist-msd run.json
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .common import UsageError, checked_device, int_range
from .eval import STRENGTHS

__all__ = ["register", "run_compare", "run_list", "run_table"]


def run_list(args: argparse.Namespace) -> int:
    from ..zoo import PLANNED, REGISTRY, available

    shipped = available()
    for name, what in PLANNED.items():
        mark = "shipped" if name in REGISTRY else "not trained yet"
        print(f"{name:<20} {mark:<16} {what}")
    for name in shipped:
        if name not in PLANNED:
            print(f"{name:<20} {'shipped':<16} {REGISTRY[name].description}")
    return 0


def _check_table_args(args: argparse.Namespace) -> list[str]:
    """The model names, every argument checked before any work (one-line errors)."""
    from ..zoo import PLANNED, available

    shipped = available()
    for name in args.models:
        if name not in shipped:
            what = "not trained in this version" if name in PLANNED else "unknown"
            raise UsageError(f"zoo model {name!r} is {what}; the models: {', '.join(shipped)} "
                             "(advlab zoo list)")
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise UsageError(f"--out {args.out}: the folder {Path(args.out).parent} does not exist")
    for doc in args.splice:
        if not Path(doc).is_file():
            raise UsageError(f"--splice {doc}: no such file")
        _markers(doc)
    if not args.stored and args.device is not None:
        checked_device(args.device)
    return args.models or shipped


def run_table(args: argparse.Namespace) -> int:
    names = _check_table_args(args)
    import torch

    from ..zoo.table import format_table, reproduction_table, stored_rows

    if args.threads:
        torch.set_num_threads(args.threads)
    if not names:
        print("no zoo model is shipped in this version", file=sys.stderr)
        return 1
    if args.stored:
        rows = stored_rows(args.models or None)
        if not rows:
            print("no stored results (python -m advlab.zoo.publish NAME --evaluate)",
                  file=sys.stderr)
            return 1
    else:
        rows = reproduction_table(names, n=args.n, strength=args.strength, device=args.device,
                                  progress=not args.no_progress, log=print)
    text = format_table(rows)
    command = "advlab zoo table " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["zoo", "table"] else \
        f"advlab zoo table --n {args.n} --strength {args.strength}"
    if args.stored:
        command = "advlab zoo table --stored"
        text += "\n\n" + _commands(rows)
    print()
    print(text)
    secs = _evaluation_times(rows)
    body = f"Produced by `{command}`.\n\n{text}\n\nEvaluation time per model: {secs}.\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write("# advlab MNIST zoo: reproduction table\n\n" + body)
        print(f"\nwritten to {args.out}")
    for doc in args.splice:
        splice(doc, body)
        print(f"spliced into {doc}")
    return 0


def splice(doc: str, body: str) -> None:
    """Replace the text between ``doc``'s zoo-table markers with ``body``."""
    from ..generated_blocks import splice as write_block

    _markers(doc)
    write_block(doc, "zoo-table", body)


def _markers(doc: str) -> None:
    """A clear error when ``doc`` has no zoo-table markers."""
    from ..generated_blocks import find

    try:
        find(Path(doc).read_text(), "zoo-table", where=f"--splice {doc}")
    except ValueError as e:
        raise UsageError(str(e)) from None


def _evaluation_time(r: dict) -> tuple[str, str]:
    """A row's evaluation time as the table quotes it (CPU time where it was kept): what the
    time covers, and the model with its minutes."""
    if "cpu_seconds" in r:
        what = "CPU time"
        if r.get("reused") or r.get("partly_reused"):
            what += " for the threats measured again"
        if r.get("extended"):  # only the attacks appended to these threats' stacks ran
            what += f" (for {', '.join(r['extended'])} the attacks appended to the stack)"
        return what, f"{r['model']} {r['cpu_seconds'] / 60:.0f} min"
    what = "one core, summed over slices" if r.get("timing") == "sum" else "wall time"
    return what, f"{r['model']} {r['seconds'] / 60:.0f} min"


def _evaluation_times(rows: list[dict]) -> str:
    """The rows' evaluation times, grouped by what each covers."""
    groups: dict[str, list[str]] = {}
    for r in rows:
        what, text = _evaluation_time(r)
        groups.setdefault(what, []).append(text)
    return "; ".join(f"{what}: {', '.join(texts)}" for what, texts in groups.items())


def _commands(rows: list[dict]) -> str:
    """How the stored rows were measured: one command with NAME when they share it."""
    rows = [r for r in rows if "command" in r]
    shared = {r["command"].replace(f" {r['model']} ", " NAME ", 1) for r in rows}
    if len(shared) == 1:
        return f"Each row was measured by `{shared.pop()}` (NAME: the row's model)."
    return "Each row was measured by: " + "; ".join(f"`{r['command']}`" for r in rows) + "."


def run_compare(args: argparse.Namespace) -> int:
    from ..zoo import compare

    try:
        a = compare.load(args.a)
        b = compare.load(args.b, model=args.model)
        print(compare.report(a, b, show=args.show))
    except ValueError as err:
        raise UsageError(str(err)) from err
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``zoo list``, ``zoo table`` and ``zoo compare`` to an argparse subparsers object."""
    p = subparsers.add_parser("zoo", help="the pretrained MNIST model zoo", description=__doc__,
                              formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="zoo_command", metavar="{list,table,compare}")
    pl = sub.add_parser("list", help="the zoo's models and which are shipped")
    pl.set_defaults(func=run_list)
    pt = sub.add_parser("table", help="measure every shipped model (the reproduction table)")
    pt.add_argument("models", nargs="*", help="model names (default: every shipped model)")
    pt.add_argument("--n", type=int_range(1, 10000), default=1000,
                    help="first N MNIST test images (1000)")
    pt.add_argument("--strength", default="strong", choices=STRENGTHS,
                    help="advlab.presets strength (strong)")
    pt.add_argument("--device", default=None, help="cpu, cuda, ... (default: GPU if present)")
    pt.add_argument("--threads", type=int_range(1), default=None)
    pt.add_argument("--out", default=None, help="also write the table (markdown) here")
    pt.add_argument("--splice", action="append", default=[], metavar="FILE.md",
                    help="also put it between FILE's <!-- zoo-table --> markers (README.md)")
    pt.add_argument("--no-progress", action="store_true")
    pt.add_argument("--stored", action="store_true",
                    help="print the stored measurements (advlab/zoo/results) instead of measuring")
    pt.set_defaults(func=run_table)
    pc = sub.add_parser("compare", help="two evaluations of the first test images, image by "
                        "image", description="Which images only one of two evaluations breaks, "
                        "per threat and for the unions, on the first min(n_a, n_b) test images.")
    pc.add_argument("a", help="a zoo model (its stored result) or a results JSON file")
    pc.add_argument("b", help="the same kinds: a zoo model, a results file or an "
                    "`advlab eval --json` file")
    pc.add_argument("--model", default=None, help="the model of B's `advlab eval --json` file, "
                    "when it holds several")
    pc.add_argument("--show", type=int_range(0), default=10,
                    help="list at most this many differing images per threat (10)")
    pc.set_defaults(func=run_compare)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p
