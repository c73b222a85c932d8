"""Gradescope's side of a grade, shared by the course grader and the challenge grader.

- :func:`advlab_version`: the version recorded in every ``results.json``.
- :func:`write_student_json`: ``OUT/<student>/results.json``, written as a fresh file
  (:func:`write_new`: an existing file or link there is replaced, never followed).
- :func:`review_lines`: the end of a summary a student reads, the problems met while running
  the submission and the flags for the instructor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["advlab_version", "review_lines", "write_new", "write_student_json"]


def advlab_version() -> str:
    """The installed advlab version (or 'source' when run from a checkout)."""
    try:
        from importlib.metadata import version

        return version("advlab")
    except Exception:
        return "source"


def write_new(path: Path, text: str) -> None:
    """Write ``text`` to a fresh file at ``path`` (an existing file or link there is replaced)."""
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_student_json(out_dir: Path, student: str, results: dict) -> None:
    """``out_dir/<student>/results.json`` (indented JSON); a link named ``student`` is removed
    first, so nothing is written outside ``out_dir``. ``student`` must be a unique, safe name
    (course intake makes it so)."""
    d = out_dir / student
    if d.is_symlink():
        d.unlink()
    d.mkdir(parents=True, exist_ok=True)
    write_new(d / "results.json", json.dumps(results, indent=2) + "\n")


def review_lines(problems: list[str], flags: list[str], heading: str) -> list[str]:
    """The first 20 ``problems`` under ``heading``, then every flag for the instructor."""
    lines = []
    if problems:
        lines.append(heading)
        lines += [f"  {p}" for p in problems[:20]]
    if flags:
        lines.append("Flagged for review by your instructor:")
        lines += [f"  {f}" for f in flags]
    return lines
