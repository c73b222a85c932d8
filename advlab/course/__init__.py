"""Autograded exercises for the advlab course.

- ``check(qid, fn)``: immediate feedback inside an exercise notebook.
- :mod:`advlab.course.release`: generate ``exercises/`` from ``solutions/`` (nbgrader markers).
- :mod:`advlab.course.grade`: grade a folder of submissions (Gradescope ``results.json``,
  class CSV), each in its own sandboxed kernel.
"""

from .checks import CheckReport, check
from .registry import EXERCISE_NAMES, available, find_question, get_exercise

__all__ = [
    "check",
    "CheckReport",
    "EXERCISE_NAMES",
    "available",
    "find_question",
    "get_exercise",
]
