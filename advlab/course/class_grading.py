"""Grade a class: every submission in a folder (or Gradescope's one), and write the results.

:func:`grade_folder` reads every submission up front (so a submission that writes over its
neighbours changes nothing), grades each with :func:`.grade_submission` (optionally in
parallel) and writes, per student, a Gradescope-format ``results.json`` and, for the class,
``summary.csv``. :func:`grade_gradescope` grades the one submission of Gradescope's layout.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import intake, isolation
from .engine import Limits
from .gradescope import write_student_json
from .intake import Submission
from .registry import get_exercise
from .scoring import zero_tests
from .spec import Exercise
from .submission_grading import grade_submission
from .submission_result import SubmissionResult, summary_text

__all__ = ["GradingError", "find_submissions", "grade_folder", "grade_gradescope",
           "write_results", "write_summary_csv"]


class GradingError(Exception):
    """A problem with the grader's inputs (not with a submission): a missing folder, say."""


def find_submissions(folder: Path, exercise: Exercise) -> list[Submission]:
    """Every submission in ``folder``, read up front, under unique names (see :mod:`.intake`)."""
    try:
        found = intake.find_submissions(Path(folder), exercise.notebook)
    except FileNotFoundError as exc:
        raise GradingError(str(exc)) from None
    if not found:
        raise GradingError(
            f"no submissions in {str(folder)!r}: put one NAME.ipynb per student there, or one "
            f"folder per student containing {exercise.notebook}"
        )
    return found


def _not_graded(exercise: Exercise, student: str, problem: str) -> SubmissionResult:
    res = SubmissionResult(student, exercise.name, 0.0, exercise.max_points)
    res.problems.append(problem)
    res.tests = zero_tests(exercise, f"not graded: {problem}")
    res.output = summary_text(res)
    return res


def grade_folder(
    exercise: Exercise | str,
    folder: Path,
    out_dir: Path | None = None,
    limits: Limits | None = None,
    jobs: int = 1,
    progress=None,
) -> list[SubmissionResult]:
    """Grade every submission in ``folder``; write results under ``out_dir`` if given.

    Results are written only after every submission's processes are gone (each kernel's
    sandbox is torn down and checked empty inside :func:`grade_submission`).
    """
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    limits = limits or Limits()
    iso = isolation.detect()
    if iso.weak:  # said at the start of the run (and in every summary row), never silently
        warnings.warn(f"advlab grade: {iso.banner()}", RuntimeWarning, stacklevel=2)
    subs = find_submissions(Path(folder), exercise)
    for q in exercise.questions:  # build inputs and references before any submission runs
        q.cases()

    def one(sub: Submission) -> SubmissionResult:
        if sub.raw is None:
            res = _not_graded(exercise, sub.student, sub.problem)
        else:
            try:
                res = grade_submission(exercise, sub.raw, sub.student, limits, sub.path.name)
            except GradingError:  # a set-up error (limits, exercise): stop, as before
                raise
            except Exception as e:  # one submission's failure never loses the class's results
                res = _not_graded(exercise, sub.student, (
                    f"the grader itself failed on {sub.path.name} ({type(e).__name__}: {e}); "
                    "the submission is untouched: grade it again on its own with "
                    f"`advlab grade {exercise.name} {sub.path}`"))
        if sub.clash:
            res.problems.insert(0, sub.clash)
            res.output = summary_text(res)
        if progress:
            progress(res)
        return res

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, subs))
    if out_dir is not None:
        write_results(results, Path(out_dir), exercise)
    return results


def write_results(results: list[SubmissionResult], out_dir: Path, exercise: Exercise) -> None:
    """``OUT/<student>/results.json`` (Gradescope format) and ``OUT/summary.csv``."""
    names = [r.student.casefold() for r in results]
    dups = sorted({n for n in names if names.count(n) > 1} | (set(names) & intake.RESERVED))
    if dups:  # find_submissions makes names unique: this is a bug, never an overwrite
        raise GradingError(f"student names are not unique ({', '.join(dups)}); nothing written")
    out_dir.mkdir(parents=True, exist_ok=True)
    for res in results:
        write_student_json(out_dir, res.student, res.as_gradescope())
    write_summary_csv(results, out_dir / "summary.csv", exercise)


def _isolation_note(level: str) -> str:
    """The summary's isolation column: the level, with a warning when it is the weak one."""
    if level == "none":
        return "none (WEAK: no namespaces, the grader's user; see docs/grading.md)"
    return level


def write_summary_csv(results: list[SubmissionResult], path: Path, exercise: Exercise) -> None:
    """One row per student: total, percent, points per question, problems, flags, time, hash."""
    qids = [q.qid for q in exercise.questions]
    if path.is_symlink():
        path.unlink()
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["student", "score", "max_score", "percent", *qids, "problems", "flags",
                    "seconds", "sha256", "isolation"])
        for r in results:
            per = r.question_scores()
            pct = 100.0 * r.score / r.max_score if r.max_score else 0.0
            w.writerow([r.student, f"{r.score:g}", f"{r.max_score:g}", f"{pct:.1f}",
                        *(f"{per.get(q, 0.0):g}" for q in qids), " | ".join(r.problems),
                        " | ".join(r.flags), f"{r.seconds:.1f}", r.sha256,
                        _isolation_note(r.isolation)])


def grade_gradescope(
    exercise: Exercise | str, folder: Path, results_json: Path, limits: Limits | None = None
) -> SubmissionResult:
    """Gradescope mode: ``folder`` holds one student's files; write ``results_json``."""
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    folder = Path(folder)
    if not folder.exists():
        raise GradingError(f"submission folder {str(folder)!r} does not exist")
    root = Path(os.path.realpath(folder))
    path, why = (root, "") if root.is_file() else intake.notebook_in(root, exercise.notebook)
    if path is None and why.startswith("no notebook"):
        why = f"no notebook found: please submit {exercise.notebook}"
    elif path is not None:
        try:
            raw = intake.read_submitted_file(path, root if root.is_dir() else root.parent)
        except intake.RefusedFile as exc:
            path, why = None, f"refused: {exc}"
    if path is None:
        res = _not_graded(exercise, "student", why)
    else:
        res = grade_submission(exercise, raw, "student", limits, path.name)
    results_json = Path(results_json)
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(res.as_gradescope(), indent=2) + "\n")
    return res
