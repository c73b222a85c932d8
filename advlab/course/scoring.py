"""From a question's cases to points: the kernel's inputs, its outcomes, the scored tests.

The grader sends each question's inputs as plain data (:func:`case_payloads`), reads back what
the kernel reported per case (:func:`load_outcomes`; a case it never reported gets the
outcome :func:`missing_result` says) and scores every case with the question's own checks
(:func:`score_question`), in Gradescope's per-test shape (:class:`TestResult`).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from . import codec, intake
from .engine import CellLog, Limits
from .spec import CaseResult, Exercise, Outcome, Question, score_case
from .submission_result import TestResult

__all__ = ["MAX_OUTPUT_FILE", "STATUSES", "case_payloads", "harvest_timeout", "load_outcomes",
           "missing_result", "score_question", "test_result", "to_outcome", "zero_tests"]

MAX_OUTPUT_FILE = 200 * 2**20
STATUSES = ("ok", "error", "timeout", "missing")


def case_payloads(question: Question) -> list[list[dict]]:
    """The plain-data inputs of every call of every case of ``question``."""
    return [
        [codec.encode({"args": c.args, "kwargs": c.kwargs}) for c in case.calls]
        for case in question.cases()
    ]


def harvest_timeout(question: Question, limits: Limits) -> float:
    """Time allowed for one question's harvest cell."""
    calls = sum(len(c.calls) for c in question.cases())
    return limits.call_timeout * calls + 15.0


def load_outcomes(path: Path, n_cases: int) -> tuple[list[list[Outcome]], list[str]]:
    """Outcomes per case from the kernel's output file (cases without a result stay empty),
    and the kernel's provenance flags."""
    raw: list = []
    flags: list[str] = []
    try:
        blob = intake.read_submitted_file(path, path.parent, MAX_OUTPUT_FILE)
        data = torch.load(io.BytesIO(blob), weights_only=True)
        raw = data.get("results", [])
        flags = [str(f)[:300] for f in data.get("flags", [])][:5]
    except Exception:  # no file, a link, too large, not a torch file: no results
        raw = []
    cases: list[list[Outcome]] = []
    for i in range(n_cases):
        entries = raw[i] if i < len(raw) and isinstance(raw[i], list) else []
        cases.append([to_outcome(e) for e in entries])
    return cases, flags


def to_outcome(entry) -> Outcome:
    """One call's reported result as an :class:`Outcome` (a malformed one is an error)."""
    if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
        return Outcome("error", error="the kernel returned a malformed result")
    after = entry.get("after") if isinstance(entry.get("after"), dict) else {}
    return Outcome(entry["status"], entry.get("value"), after, str(entry.get("error", ""))[:2000])


def missing_result(log: CellLog) -> Outcome:
    """The outcome for a case the kernel never reported (it hung or died on an earlier call)."""
    if log.status == "timeout":
        return Outcome("timeout")
    why = {
        "dead": "killed the kernel (os._exit, a crash or too much memory)",
        "skipped": "could not run: the submission's time limit was reached",
    }
    return Outcome("error", error=why.get(log.status, f"stopped the kernel ({log.detail})"))


def score_question(question, outcomes, log, limits, q_number) -> list[TestResult]:
    """The tests of question number ``q_number`` from its outcomes per case and its harvest
    cell's ``log``."""
    note = f"within {limits.call_timeout:g} s"
    tests = []
    for j, (case, outs) in enumerate(zip(question.cases(), outcomes, strict=True), start=1):
        if len(outs) < len(case.calls) and not any(o.status == "missing" for o in outs):
            outs = outs + [missing_result(log)]
        res = score_case(case, outs, question.func, note)
        tests.append(test_result(question, case, res, f"{q_number}.{j}"))
    return tests


def test_result(question: Question, case, res: CaseResult, number: str) -> TestResult:
    """One scored case as a Gradescope test (input, message and hint when it failed)."""
    status = "passed" if res.passed else "failed"
    lines = [] if res.passed else [f"input: {case.describe}", res.message, f"hint: {question.hint}"]
    return TestResult(
        name=f"{question.qid}: {case.name}",
        number=number,
        score=float(res.points),
        max_score=float(res.max_points),
        status=status,
        output="\n".join(line for line in lines if line),
        visibility="after_published" if case.hidden else "visible",
    )


def zero_tests(exercise: Exercise, reason: str) -> list[TestResult]:
    """Every case of ``exercise`` failed with ``reason`` (a submission that was not graded)."""
    tests = []
    for qi, q in enumerate(exercise.questions, start=1):
        for j, case in enumerate(q.cases(), start=1):
            res = CaseResult(case.name, 0.0, case.points, False, reason, case.hidden)
            tests.append(test_result(q, case, res, f"{qi}.{j}"))
    return tests
