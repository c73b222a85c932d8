"""Command line for the course: ``advlab course ...`` and ``advlab grade ...``.

``advlab.cli`` calls :func:`register`. ``python -m advlab.course.cli`` (what the Gradescope
autograder runs) is the same as ``advlab`` with these two commands registered in full.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .common import EXIT_USAGE

__all__ = ["register", "cmd_release", "cmd_list", "cmd_gradescope", "cmd_classroom", "cmd_grade",
           "isolation_banner", "EXIT_OK", "EXIT_FAIL", "EXIT_USAGE"]

EXIT_OK, EXIT_FAIL = 0, 1


def register(subparsers) -> None:
    """Add the ``course`` (release, list, gradescope, classroom) and ``grade`` subcommands."""
    course = subparsers.add_parser(
        "course", help="course tools: release exercises, package graders"
    )
    csub = course.add_subparsers(dest="course_command", metavar="ACTION")
    course.set_defaults(func=lambda args: _help(course))
    _add_release(csub)
    _add_list(csub)
    _add_gradescope(csub)
    _add_classroom(csub)
    _add_grade(subparsers)


def _help(parser) -> int:
    parser.print_help()
    return EXIT_USAGE


def _add_release(csub) -> None:
    p = csub.add_parser("release", help="generate exercises/ from solutions/ (nbgrader markers)")
    p.add_argument("--solutions", type=Path, default=Path("solutions"))
    p.add_argument("--out", type=Path, default=Path("exercises"))
    p.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of date"
    )
    p.set_defaults(func=cmd_release)


def _add_list(csub) -> None:
    p = csub.add_parser("list", help="list exercises, questions and points")
    p.set_defaults(func=cmd_list)


def _add_packager(csub, name, help, func, out, out_help, pin, pin_help) -> None:
    """A subcommand that packages one exercise: EXERCISE, -o/--out, --pin."""
    p = csub.add_parser(name, help=help)
    p.add_argument("exercise")
    p.add_argument("-o", "--out", type=Path, default=out, help=out_help)
    p.add_argument("--pin", default=pin, help=pin_help)
    p.set_defaults(func=func)


def _add_gradescope(csub) -> None:
    _add_packager(
        csub, "gradescope", "build a Gradescope autograder zip for an exercise", cmd_gradescope,
        None, "folder to write (default: autograder-EXERCISE); a .zip is made beside it",
        None, "pip requirement for advlab (default: bundle this advlab's source)",
    )


def _add_classroom(csub) -> None:
    _add_packager(
        csub, "classroom", "write GitHub Classroom autograding files", cmd_classroom,
        Path("."), "the student template repository (default: here)",
        "advlab", "pip requirement for advlab in the workflow",
    )


def _add_grade(subparsers) -> None:
    p = subparsers.add_parser(
        "grade", help="grade a folder of submitted notebooks (Gradescope results.json + CSV)"
    )
    p.add_argument("exercise", help="ex1 ... ex6")
    p.add_argument(
        "submissions",
        type=Path,
        help="folder with NAME.ipynb files or NAME/ folders (or one notebook)",
    )
    p.add_argument(
        "-o", "--out", type=Path, default=None, help="results folder (default: grades-EXERCISE)"
    )
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--cell-timeout", type=float, default=60.0, help="seconds per cell")
    p.add_argument(
        "--timeout", type=float, default=300.0, help="seconds for all of one submission's cells"
    )
    p.add_argument(
        "--call-timeout",
        type=float,
        default=20.0,
        help="seconds per call of a student's function while grading",
    )
    p.add_argument("--memory-mb", type=int, default=2048, help="memory limit per kernel")
    p.add_argument(
        "--gradescope",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="grade SUBMISSIONS as one student's folder and write this results.json",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_grade)


# ---------------------------------------------------------------------------------------------


def cmd_release(args) -> int:
    """``advlab course release``."""
    from ..course.release import MarkerError, check_release, write_release

    try:
        if args.check:
            diffs = check_release(args.solutions, args.out)
            for d in diffs:
                print(f"{args.out / d.name}: {d.problem}", file=sys.stderr)
            if diffs:
                print("exercises are out of date: run `advlab course release`", file=sys.stderr)
                return EXIT_FAIL
            print(f"{args.out} is up to date with {args.solutions}")
            return EXIT_OK
        names = write_release(args.solutions, args.out)
    except (FileNotFoundError, MarkerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for name in names:
        print(f"wrote {args.out / name}")
    return EXIT_OK


def cmd_list(args) -> int:
    """``advlab course list``."""
    from ..course.registry import available, get_exercise

    try:
        return _list(available(), get_exercise)
    except FileNotFoundError as exc:  # MNIST is needed to build the cases
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _list(names, get_exercise) -> int:
    for name in names:
        ex = get_exercise(name)
        print(f"{ex.name}  {ex.title}  ({ex.notebook}, {ex.max_points:g} points)")
        for q in ex.questions:
            hidden = sum(1 for c in q.cases() if c.hidden)
            print(
                f"    {q.qid:28s} {q.max_points:g} points, {len(q.cases())} cases "
                f"({hidden} hidden), function `{q.func}`"
            )
    return EXIT_OK


def cmd_gradescope(args) -> int:
    """``advlab course gradescope EXERCISE``."""
    from ..course.autograders import build_gradescope
    from ..course.registry import UnknownExerciseError

    try:
        out = args.out or Path(f"autograder-{args.exercise}")
        zip_path = build_gradescope(args.exercise, out, pin=args.pin)
    except UnknownExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {out}/ and {zip_path} (upload the zip as the Gradescope autograder)")
    return EXIT_OK


def cmd_classroom(args) -> int:
    """``advlab course classroom EXERCISE``."""
    from ..course.autograders import build_classroom
    from ..course.registry import UnknownExerciseError

    try:
        paths = build_classroom(args.exercise, args.out, pin=args.pin)
    except UnknownExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for p in paths:
        print(f"wrote {p}")
    return EXIT_OK


def _limits(args):
    from ..course.engine import Limits

    return Limits(
        cell_timeout=args.cell_timeout,
        submission_timeout=args.timeout,
        call_timeout=args.call_timeout,
        memory_mb=args.memory_mb,
    )


def cmd_grade(args) -> int:
    """``advlab grade EXERCISE SUBMISSIONS``."""
    from ..course.grade import GradingError, grade_folder, grade_gradescope
    from ..course.registry import UnknownExerciseError

    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        iso = isolation_banner(args.quiet)
        if args.gradescope is not None:
            res = grade_gradescope(args.exercise, args.submissions, args.gradescope, _limits(args))
            if not args.quiet:
                print(res.output)
            return EXIT_OK
        out = args.out or Path(f"grades-{args.exercise}")
        progress = None if args.quiet else _print_progress
        results = grade_folder(
            args.exercise, args.submissions, out, _limits(args), jobs=args.jobs, progress=progress
        )
    except (UnknownExerciseError, GradingError, FileNotFoundError, ValueError,
            RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    clashes = sorted({p for r in results for p in r.problems if p.startswith("name clash")})
    for line in clashes:
        print(f"warning: {line}", file=sys.stderr)
    if iso.weak:
        print(f"warning: graded with weak {iso.banner()}", file=sys.stderr)
    if not args.quiet:
        print(
            f"graded {len(results)} submissions: {out}/summary.csv and {out}/<student>/results.json"
        )
    return EXIT_OK


def isolation_banner(quiet: bool = False):
    """Say, at the start of a run, how submissions will be isolated (always when weak)."""
    from ..course.isolation import detect

    iso = detect()
    if iso.weak:
        print(f"warning: {iso.banner()}", file=sys.stderr)
    elif not quiet:
        print(iso.banner())
    return iso


def _print_progress(res) -> None:
    flag = f"  ({len(res.problems)} problems)" if res.problems else ""
    print(
        f"{res.student:24s} {res.score:g}/{res.max_score:g}  {res.seconds:.1f}s{flag}", flush=True
    )

