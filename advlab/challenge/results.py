"""One graded challenge submission, in the grader's shape and in Gradescope's ``results.json``.

Both tracks produce a :class:`Entry`: the student, a score out of 100 (attack: the share of the
model's correctly classified held-out images the attack fooled; defense: the union accuracy in
percent, 0 when the model is below the clean floor), the metrics the leaderboard shows, and the
problems and flags the instructor should read. ``results.json`` also carries Gradescope's own
``leaderboard`` entries, so a Gradescope assignment with a leaderboard shows the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

# Gradescope's pieces shared with the course grader (advlab_version, write_new: also here)
from ..course.gradescope import advlab_version, review_lines, write_new, write_student_json

__all__ = ["TRACKS", "Entry", "advlab_version", "test", "write_new", "write_student_results"]

TRACKS = ("attack", "defense")


@dataclass
class Entry:
    """A graded submission. ``metrics`` maps a column name to a number (percent) or text;
    ``ranked`` is False for a submission that is not on the leaderboard's ranking (e.g. a
    defense below the clean floor, a file that was refused)."""

    student: str
    track: str
    score: float = 0.0
    metrics: dict = field(default_factory=dict)
    ranked: bool = False
    tests: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sha256: str = ""
    isolation: str = ""
    evaluation: str = ""
    max_score: float = 100.0

    def as_json(self) -> dict:
        """Plain data (the leaderboard's JSON rows)."""
        return asdict(self)

    def summary(self) -> str:
        """The text a student reads first."""
        lines = [f"{self.track} track: {self.score:.1f}/{self.max_score:g}"]
        lines += [f"  {k}: {_fmt(v)}" for k, v in self.metrics.items()]
        if self.evaluation:
            lines.append(f"  evaluation: {self.evaluation}")
        lines += review_lines(self.problems, self.flags, "Problems:")
        return "\n".join(lines)

    def as_gradescope(self, leaderboard: list[dict]) -> dict:
        """Gradescope's ``results.json`` (with its ``leaderboard`` key)."""
        return {
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "execution_time": round(self.seconds, 1),
            "output": self.summary(),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": self.tests,
            "leaderboard": leaderboard,
            "extra_data": {
                "advlab_version": advlab_version(),
                "track": self.track,
                "metrics": self.metrics,
                "ranked": self.ranked,
                "submission_sha256": self.sha256,
                "flags": self.flags,
                "isolation": self.isolation,
                "evaluation": self.evaluation,
            },
        }


def _fmt(v) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def test(name: str, score: float, max_score: float, output: str, number: str) -> dict:
    """One Gradescope test entry."""
    status = "passed" if score >= max_score else "failed"
    return {"name": name, "number": number, "score": round(score, 4), "max_score": max_score,
            "status": status, "output": output, "visibility": "visible"}


def write_student_results(entries: list[Entry], out_dir: Path, leaderboard_of) -> None:
    """``OUT/<student>/results.json`` per entry; ``leaderboard_of(entry)`` gives its
    Gradescope leaderboard list. Student names must already be unique (intake does that)."""
    names = [e.student.casefold() for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("student names are not unique; nothing written")
    out_dir.mkdir(parents=True, exist_ok=True)
    for e in entries:
        write_student_json(out_dir, e.student, e.as_gradescope(leaderboard_of(e)))
