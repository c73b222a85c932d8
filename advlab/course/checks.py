"""Student-facing feedback: ``check("ex1.fgsm", fgsm)`` in an exercise notebook.

``check`` runs the question's visible cases on the student's function right in the notebook and
prints, per case, whether it passed, what input it used, summaries of the expected and returned
values and a hint, never the reference answer itself, and the points earned so far. Under
``advlab grade`` (``ADVLAB_GRADING=1``) it does nothing: the grader judges with its own copy of
the checks. Under nbgrader's autograder (``NBGRADER_EXECUTION`` set) a failed check raises
``AssertionError`` so that nbgrader can score the cell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from . import codec
from .harness import run_call
from .registry import find_question
from .spec import CaseResult, Outcome, score_case


@dataclass
class CheckReport:
    """What ``check`` found: the points earned and each case's result."""

    qid: str
    points: float
    max_points: float
    results: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every case passed."""
        return all(r.passed for r in self.results)

    def __repr__(self) -> str:
        return f"CheckReport({self.qid!r}, {self.points:g}/{self.max_points:g} points)"


def run_cases(qid: str, fn, hidden: bool = False) -> CheckReport:
    """Judge ``fn`` on the question's cases (hidden ones only if ``hidden``) in this process."""
    exercise, question = find_question(qid)
    results = []
    for case in question.cases():
        if case.hidden and not hidden:
            continue
        outcomes = []
        for call in case.calls:
            payload = codec.encode({"args": call.args, "kwargs": call.kwargs})
            outcomes.append(Outcome(**run_call(fn, payload)))
        results.append(score_case(case, outcomes, question.func))
    points = sum(r.points for r in results)
    max_points = sum(r.max_points for r in results)
    return CheckReport(qid, points, max_points, results)


def format_report(report: CheckReport, hint: str, describe: dict[str, str]) -> str:
    """Human-readable feedback for one check."""
    head = f"{report.qid}: {report.points:g}/{report.max_points:g} points"
    lines = [head]
    for r in report.results:
        mark = "PASS" if r.passed else "FAIL"
        lines.append(f"  [{mark}] {r.name}")
        if not r.passed:
            lines.append(f"         input: {describe.get(r.name, '')}")
            for line in r.message.splitlines():
                lines.append(f"         {line}")
    if not report.passed and hint:
        lines.append(f"  hint: {hint}")
    if report.passed:
        lines.append("  all visible checks passed (the grader also runs hidden cases)")
    return "\n".join(lines)


def check(qid: str, fn, hidden: bool = False, quiet: bool = False) -> CheckReport | None:
    """Check the function ``fn`` for question ``qid`` and print specific feedback.

    Returns a :class:`CheckReport` (``None`` under ``advlab grade``). ``hidden=True`` also runs
    the hidden cases (used by the solution notebooks' hidden-test cells).
    """
    if os.environ.get("ADVLAB_GRADING") == "1":
        return None
    if not callable(fn):
        raise TypeError(f"check({qid!r}, ...) needs your function, got {type(fn).__name__}")
    _, question = find_question(qid)
    report = run_cases(qid, fn, hidden=hidden)
    if not quiet:
        describe = {c.name: c.describe for c in question.cases()}
        print(format_report(report, question.hint, describe))
    if os.environ.get("NBGRADER_EXECUTION") and not report.passed:
        raise AssertionError(f"{qid}: {report.points:g}/{report.max_points:g} points")
    return report
