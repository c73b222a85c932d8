"""Grade one submitted notebook in a fresh sandboxed kernel, judged by the grader's own checks.

Inside the kernel only the student's code runs: the notebook's cells, then per question a
harvest cell that calls the student's function on the grader's inputs and saves what came back.
Every process of the submission is gone before any output is read; the values are compared with
reference answers in this process (:mod:`.scoring`).
"""

from __future__ import annotations

import hashlib
import time

from . import isolation
from .engine import CellLog, KernelRun, Limits
from .harness import PREAMBLE, harvest_source
from .kernel_session import cell_problems, notebook_session, replay, send_inputs
from .notebook_cells import read_notebook_cells
from .provenance import source_flags
from .registry import get_exercise
from .scoring import case_payloads, harvest_timeout, load_outcomes, score_question, zero_tests
from .spec import Exercise, Question
from .submission_result import SubmissionResult, TestResult, summary_text

__all__ = ["grade_submission", "static_flags"]


def grade_submission(
    exercise: Exercise | str,
    raw: bytes,
    student: str = "student",
    limits: Limits | None = None,
    filename: str = "submission.ipynb",
) -> SubmissionResult:
    """Grade one notebook given as bytes; never raises because of what the notebook contains."""
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    limits = limits or Limits()
    start = time.monotonic()
    result = SubmissionResult(
        student, exercise.name, 0.0, exercise.max_points, sha256=hashlib.sha256(raw).hexdigest()
    )
    try:
        cells = read_notebook_cells(raw)
    except ValueError as exc:
        result.problems.append(str(exc))
        result.tests = zero_tests(exercise, f"not graded: {exc}")
    else:
        result.flags = static_flags(cells, [q.func for q in exercise.questions])
        result.isolation = isolation.detect().level
        try:
            _run_and_score(result, exercise, cells, raw, limits, filename)
        except Exception as exc:  # e.g. no kernel could start: report it, grade the others
            reason = f"the grader could not run this notebook: {type(exc).__name__}: {exc}"
            result.problems.append(reason[:500])
            result.tests = zero_tests(exercise, reason[:500])
    result.score = round(sum(t.score for t in result.tests), 6)
    result.seconds = time.monotonic() - start
    result.output = summary_text(result)
    return result


def _run_and_score(result, exercise, cells, raw, limits, filename) -> None:
    """Grade the cells into ``result``: its tests, problems, kernel flags and isolation."""
    result.tests, logs, kernel_flags, iso, left = _grade_cells(
        exercise, cells, raw, limits, filename
    )
    result.problems.extend(cell_problems(logs))
    result.flags += [f for f in kernel_flags if f not in result.flags]
    result.isolation = iso.level
    if left:
        msg = f"{len(left)} processes of this submission could not be killed: {left[:5]}"
        result.problems.append(msg)
        result.flags.append(msg)


def _grade_cells(exercise, cells, raw, limits, filename):
    """Run the notebook and the harvests, end every process, then read and score the outputs.

    Returns (tests, cell logs, kernel flags, the isolation level, processes that survived).
    """
    with notebook_session(limits, raw, filename, "advlab-grade-", PREAMBLE, cells) as (
            scratch, run):
        logs = list(run.logs)
        harvests = []
        replays = 2
        for qi, question in enumerate(exercise.questions, start=1):
            if not run.alive() and replays > 0:
                replays -= 1
                replay(run, PREAMBLE, cells, limits)
            harvests.append(_harvest_question(run, question, qi, scratch, limits))
        run.close()  # every process of the submission is gone before anything is read
        tests: list[TestResult] = []
        flags: list[str] = []
        for qi, (question, (out_path, log)) in enumerate(
            zip(exercise.questions, harvests, strict=True), start=1
        ):
            outcomes, q_flags = load_outcomes(out_path, len(question.cases()))
            tests += score_question(question, outcomes, log, limits, qi)
            flags += [f for f in q_flags if f not in flags]
        return tests, logs, flags, run.iso, list(run.survivors)


def _harvest_question(run: KernelRun, question: Question, qi: int, scratch, limits):
    """Run the harvest cell of one question; returns (output file, the cell's log)."""
    in_path, out_path = scratch.inbox / f"in_{qi}.pt", scratch.io / f"out_{qi}.pt"
    send_inputs({"cases": case_payloads(question)}, in_path)
    if out_path.is_symlink() or out_path.exists():
        out_path.unlink()  # the kernel owns io/: whatever it left there is not a result
    if run.alive():
        src = harvest_source(question.func, str(in_path), str(out_path), limits.call_timeout)
        log = run.run(src, timeout=harvest_timeout(question, limits), deadline=False)
    else:
        log = CellLog(-1, "skipped", "the kernel could not be restarted in time")
    return out_path, log


def static_flags(cells: list[str], funcs: list[str] | None = None) -> list[str]:
    """Flags from the submission's source alone (see :mod:`advlab.course.provenance`)."""
    return source_flags(cells, funcs or [])
