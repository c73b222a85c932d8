"""What a grade is: per-case :class:`TestResult`, per-submission :class:`SubmissionResult`
(with its Gradescope ``results.json`` form) and the summary text a student reads."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .gradescope import advlab_version, review_lines

__all__ = ["SubmissionResult", "TestResult", "grader_hash", "summary_text"]


@dataclass
class TestResult:
    """One graded case, in Gradescope's per-test shape."""

    name: str
    number: str
    score: float
    max_score: float
    status: str
    output: str
    visibility: str

    def as_json(self) -> dict:
        """The Gradescope test dict."""
        return asdict(self)


@dataclass
class SubmissionResult:
    """The grade of one submission."""

    student: str
    exercise: str
    score: float
    max_score: float
    tests: list[TestResult] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    sha256: str = ""
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    isolation: str = ""

    def question_scores(self) -> dict[str, float]:
        """Points per question id."""
        scores: dict[str, float] = {}
        for t in self.tests:
            qid = t.name.split(":", 1)[0]
            scores[qid] = scores.get(qid, 0.0) + t.score
        return scores

    def as_gradescope(self) -> dict:
        """The Gradescope ``results.json`` object."""
        return {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.seconds, 1),
            "output": self.output,
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [t.as_json() for t in self.tests],
            "extra_data": {
                "advlab_version": advlab_version(),
                "grader_sha256": grader_hash(),
                "submission_sha256": self.sha256,
                "flags": self.flags,
                "isolation": self.isolation,
            },
        }


@functools.lru_cache(maxsize=1)
def grader_hash() -> str:
    """SHA-256 over the grader's own source files: equal hashes grade identically."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def summary_text(result: SubmissionResult) -> str:
    """Points in all and per question, then the problems met and the flags raised."""
    lines = [f"{result.exercise}: {result.score:g}/{result.max_score:g} points"]
    for qid, pts in result.question_scores().items():
        lines.append(f"  {qid}: {pts:g}")
    lines += review_lines(result.problems, result.flags, "While running your notebook:")
    return "\n".join(lines)
