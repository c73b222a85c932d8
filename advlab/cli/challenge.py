"""``advlab challenge new | grade | board``: run a class challenge end to end.

    advlab challenge new fall-mnist -o challenge/ --zoo mnist-linf --threat linf:0.3
    advlab challenge grade challenge/challenge.json attack attack-submissions/ -o results/
    advlab challenge grade challenge/challenge.json defense defense-submissions/ -o results/
    advlab challenge board results/ -o site/

Nothing heavy is imported before the arguments are parsed (``advlab challenge --help`` is
instant); user mistakes are one line and exit status 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .common import UsageError, int_range, positive_float
from .eval import STRENGTHS

__all__ = ["register", "run_new", "run_grade", "run_board"]


def _usage(exc: Exception):
    return UsageError(str(exc))


def run_new(args: argparse.Namespace) -> int:
    """Write the challenge file and the students' starter notebooks."""
    import nbformat

    from ..challenge import spec, starter

    out = Path(args.out)
    if (out / "challenge.json").exists() and not args.force:
        raise _usage(FileExistsError(f"{out / 'challenge.json'} exists; pass --force to replace "
                                     "it (a new seed draws new held-out images)"))
    if args.weights:
        src = Path(args.weights)
        if not src.is_file() or src.suffix != ".safetensors":
            raise _usage(ValueError(f"--weights {src}: give an existing .safetensors file"))
        out.mkdir(parents=True, exist_ok=True)
        dst = out / "hidden-model.safetensors"
        if src.resolve() != dst.resolve():
            shutil.copyfile(src, dst)
        model = {"weights": dst.name, "architecture": args.architecture,
                 "sha256": spec.sha256_file(dst)}
    else:
        model = {"zoo": args.zoo}
    try:
        ch = spec.new(
            args.name, seed=args.seed, n=args.n,
            attack=spec.AttackTrack(model=model, threat=args.threat,
                                    batch_size=args.batch_size),
            defense=spec.DefenseTrack(threats=args.defense_threats.split(","),
                                      strength=args.strength, clean_floor=args.clean_floor))
        if "zoo" in model:
            from .. import zoo

            zoo.verify(model["zoo"])
        else:
            ch.root = out
            spec.attack_model(ch)  # the hidden model loads with its architecture
    except spec.ChallengeError as exc:
        raise _usage(exc) from None
    path = ch.save(out / "challenge.json")
    student = out / "student"
    student.mkdir(exist_ok=True)
    nbformat.write(starter.attack_notebook(ch), student / ch.attack.notebook)
    nbformat.write(starter.defense_notebook(ch), student / "defense.ipynb")
    print(f"wrote {path} (seed {ch.seed}: keep this file from students to keep the held-out "
          f"draw secret)")
    print(f"wrote {student}/{ch.attack.notebook} and {student}/defense.ipynb: hand these out")
    print(f"next: advlab challenge grade {path} attack SUBMISSIONS/ -o results/")
    return 0


def run_grade(args: argparse.Namespace) -> int:
    """Grade one track's submissions folder (or one Gradescope submission)."""
    from ..challenge import grading, spec

    try:
        ch = spec.load(args.challenge)
        if args.n is not None:
            ch.n = args.n
            ch.validate()
    except spec.ChallengeError as exc:
        raise _usage(exc) from None
    if args.gradescope:
        e = grading.grade_gradescope(ch, args.track, Path(args.submissions), Path(args.gradescope))
        print(e.summary())
        return 0
    if not args.out:
        raise _usage(ValueError("give -o OUT (the results folder) or --gradescope results.json"))
    from ..course import isolation

    if args.track == "attack":
        print(isolation.detect().banner(), file=sys.stderr)

    def progress(e):
        key = "accuracy left" if e.track == "attack" else "union accuracy"
        v = e.metrics.get(key)
        shown = f"{key} {v:.1f}%" if isinstance(v, float) else "not ranked"
        print(f"{e.student}: {shown} ({e.seconds:.0f} s)", file=sys.stderr, flush=True)

    try:
        grading.grade_track(ch, args.track, Path(args.submissions), Path(args.out), args.jobs,
                            progress)
    except spec.ChallengeError as exc:
        raise _usage(exc) from None
    print(f"wrote {args.out}/{args.track}.csv, {args.track}.json, index.html and "
          f"{args.out}/{args.track}/<student>/results.json")
    return 0


def run_board(args: argparse.Namespace) -> int:
    """Rebuild the HTML page from a results folder (optionally into a site folder)."""
    from ..challenge import board

    src = Path(args.results)
    try:
        path = board.write_html(src, Path(args.out) if args.out else None)
    except FileNotFoundError as exc:
        raise _usage(exc) from None
    if args.out:
        for track in board.KEYS:
            for ext in ("csv", "json"):
                f = src / f"{track}.{ext}"
                if f.is_file() and f.resolve() != (Path(args.out) / f.name).resolve():
                    shutil.copyfile(f, Path(args.out) / f.name)
    print(f"wrote {path}")
    return 0


def register(subparsers) -> None:
    """Add ``challenge`` and its subcommands."""
    p = subparsers.add_parser("challenge", help="a class challenge: attack and defense tracks "
                              "with a leaderboard", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="challenge_command", metavar="SUBCOMMAND", required=True)

    n = sub.add_parser("new", help="write a challenge file and the starter notebooks")
    n.add_argument("name", help="the challenge's name (shown on the leaderboard)")
    n.add_argument("-o", "--out", required=True, help="folder to write challenge.json into")
    who = n.add_mutually_exclusive_group()
    who.add_argument("--zoo", default="mnist-linf", help="zoo model to attack (default "
                     "mnist-linf)")
    who.add_argument("--weights", help="a hidden model's .safetensors (copied next to the file)")
    n.add_argument("--architecture", default="compact-cnn", choices=["compact-cnn", "madry-cnn"],
                   help="architecture of --weights")
    n.add_argument("--threat", default="linf:0.3", help="attack track threat, e.g. linf:0.3, "
                   "l2:2, l1:10")
    n.add_argument("--batch-size", type=int_range(1), default=250)
    n.add_argument("--defense-threats", default="linf,l1,l2",
                   help="comma-separated union for the defense track (linf, l1, l2, rt)")
    n.add_argument("--strength", default="strong", choices=STRENGTHS,
                   help="defense evaluation ('strong': the trusted attacks)")
    n.add_argument("--clean-floor", type=positive_float, default=0.95,
                   help="least clean accuracy (fraction) for a defense to be ranked")
    n.add_argument("--n", type=int_range(1, 10000), default=1000, help="held-out test images")
    n.add_argument("--seed", type=int, default=None, help="seed of the held-out draw "
                   "(default: random)")
    n.add_argument("--force", action="store_true", help="replace an existing challenge.json")
    n.set_defaults(func=run_new)

    g = sub.add_parser("grade", help="grade one track's submissions")
    g.add_argument("challenge", help="the challenge.json")
    g.add_argument("track", choices=["attack", "defense"])
    g.add_argument("submissions", help="folder: NAME.ipynb / NAME.safetensors or NAME/ folders")
    g.add_argument("-o", "--out", help="results folder (CSV, JSON, index.html, results.json)")
    g.add_argument("--jobs", type=int_range(1), default=1, help="attack notebooks at once")
    g.add_argument("--n", type=int_range(1, 10000), default=None,
                   help="override the number of held-out images (a quick trial run)")
    g.add_argument("--gradescope", help="Gradescope mode: SUBMISSIONS is one student's folder; "
                   "write this results.json")
    g.set_defaults(func=run_grade)

    b = sub.add_parser("board", help="(re)build the leaderboard page from a results folder")
    b.add_argument("results", help="the results folder of `advlab challenge grade`")
    b.add_argument("-o", "--out", help="write index.html (and the CSV/JSON) into this folder")
    b.set_defaults(func=run_board)
