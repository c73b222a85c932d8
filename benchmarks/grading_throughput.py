"""Grading throughput: grade a generated class of submissions and report submissions per minute.

    python benchmarks/grading_throughput.py                 # 50 submissions of ex1, 2 jobs
    python benchmarks/grading_throughput.py --exercise ex3 --students 20 --jobs 1 --json out.json

The report names the isolation level the grader used (``advlab.course.isolation``) and the load
average at the start. To measure what isolation costs, run an old checkout and this one side by
side under the same load (e.g. ``git worktree add /tmp/oldgrader <commit>``, then both scripts
at once) and compare the two rates.

The class mixes what a real class hands in: complete solutions, partial ones (some answers left
as stubs), untouched exercises, broken notebooks (a syntax error, an exception, an endless loop,
a crash of the kernel) and a file that is not JSON. Every generated submission has a known
score, and the benchmark reports how many were graded differently (it should be none).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ADVLAB_DATA", str(REPO.parent / "shared" / "data"))

from advlab.course import get_exercise  # noqa: E402
from advlab.course.engine import Limits  # noqa: E402
from advlab.course.grade import grade_folder  # noqa: E402

try:  # graders before issue 13 had no isolation module (the benchmark compares old and new)
    from advlab.course.isolation import detect as _isolation
except ImportError:  # pragma: no cover
    _isolation = None


def _grade_id(cell: dict) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def _mix(exercise_nb: dict, solution_nb: dict, solved: set[str]) -> dict:
    """The exercise notebook with the answers of ``solved`` questions taken from the solution."""
    nb = copy.deepcopy(exercise_nb)
    answers = {_grade_id(c): c for c in solution_nb["cells"]}
    nb["cells"] = [
        copy.deepcopy(answers[_grade_id(c)]) if _grade_id(c) in solved else c for c in nb["cells"]
    ]
    return nb


def _with_cell(nb: dict, src: str, at: int = 2) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"].insert(
        at,
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": src,
        },
    )
    return nb


def make_class(name: str, n: int, folder: Path) -> dict[str, float]:
    """Write ``n`` submissions into ``folder``; return each student's expected score."""
    ex = get_exercise(name)
    sol = json.loads((REPO / "solutions" / ex.notebook).read_text())
    stub = json.loads((REPO / "exercises" / ex.notebook).read_text())
    funcs = [q.func for q in ex.questions]
    points = {q.func: q.max_points for q in ex.questions}
    expected: dict[str, float] = {}
    for i in range(n):
        kind = i % 10
        student = f"student{i:03d}"
        if kind in (0, 1, 2, 3):  # complete
            nb, score = sol, ex.max_points
        elif kind in (4, 5, 6):  # partial: a rotating subset of the answers
            solved = {f for j, f in enumerate(funcs) if (i + j) % 2 == 0}
            nb, score = _mix(stub, sol, solved), sum(points[f] for f in solved)
        elif kind == 7:  # untouched
            nb, score = stub, 0.0
        elif kind == 8:  # broken but complete: a failing cell, a kernel crash or an endless loop
            bad = ["raise RuntimeError('oops')", "import os\nos._exit(1)", "while True:\n    pass"][
                (i // 10) % 3
            ]
            nb, score = _with_cell(sol, bad), ex.max_points
        else:  # not a notebook at all
            (folder / f"{student}.ipynb").write_text("{ this is not json")
            expected[student] = 0.0
            continue
        (folder / f"{student}.ipynb").write_text(json.dumps(nb))
        expected[student] = score
    return expected


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exercise", default="ex1")
    p.add_argument("--students", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--cell-timeout", type=float, default=20.0)
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)

    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="advlab-bench-") as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        expected = make_class(args.exercise, args.students, folder)
        limits = Limits(cell_timeout=args.cell_timeout, submission_timeout=120, call_timeout=20)
        get_exercise(args.exercise).questions  # noqa: B018  (import the grader before timing)
        start = time.monotonic()
        results = grade_folder(args.exercise, folder, Path(tmp) / "grades", limits, jobs=args.jobs)
        wall = time.monotonic() - start

    wrong = [r.student for r in results if r.score != expected[r.student]]
    per = [r.seconds for r in results]
    report = {
        "exercise": args.exercise,
        "students": len(results),
        "jobs": args.jobs,
        "cpu_count": os.cpu_count(),
        "wall_seconds": round(wall, 1),
        "submissions_per_minute": round(60 * len(results) / wall, 2),
        "median_seconds_per_submission": round(statistics.median(per), 2),
        "max_seconds_per_submission": round(max(per), 2),
        "graded_differently_than_expected": wrong,
        "isolation": _isolation().banner() if _isolation else "none (grader without isolation)",
        "load_average_at_start": load,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
