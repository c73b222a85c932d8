"""Autograded exercises for the advlab course.

- ``check(qid, fn)``: immediate feedback inside an exercise notebook.
- :mod:`advlab.course.release`: generate ``exercises/`` from ``solutions/`` (nbgrader markers).
- :mod:`advlab.course.grade`: grade a folder of submissions (Gradescope ``results.json``,
  class CSV), each in its own sandboxed kernel.
"""

import importlib

# Imported on first use (PEP 562), so that `advlab course --help` and `advlab grade --help`
# answer without importing torch.
_LAZY = {"check": "checks", "CheckReport": "checks", "EXERCISE_NAMES": "registry",
         "available": "registry", "find_question": "registry", "get_exercise": "registry"}

__all__ = [
    "check",
    "CheckReport",
    "EXERCISE_NAMES",
    "available",
    "find_question",
    "get_exercise",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
