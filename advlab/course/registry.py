"""The exercises and where their graders live (``advlab.course.graders.exN``)."""

from __future__ import annotations

import importlib

from .spec import Exercise, Question

EXERCISE_NAMES = ("ex1", "ex2", "ex3", "ex4", "ex5", "ex6")


class UnknownExerciseError(KeyError):
    """Raised for an exercise or question name that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


def available() -> list[str]:
    """Names of the exercises whose grader module exists."""
    names = []
    for name in EXERCISE_NAMES:
        try:
            importlib.import_module(f"advlab.course.graders.{name}")
        except ModuleNotFoundError:
            continue
        names.append(name)
    return names


def get_exercise(name: str) -> Exercise:
    """The :class:`Exercise` called ``name`` (``ex1`` ... ``ex6``, or a notebook file name)."""
    key = str(name).strip()
    key = key.rsplit("/", 1)[-1].split("_", 1)[0].removesuffix(".ipynb")
    if key not in EXERCISE_NAMES:
        raise UnknownExerciseError(
            f"unknown exercise {name!r}: use one of {', '.join(EXERCISE_NAMES)} "
            f"(see `advlab course list`)"
        )
    try:
        module = importlib.import_module(f"advlab.course.graders.{key}")
    except ModuleNotFoundError as exc:
        raise UnknownExerciseError(f"exercise {key!r} has no grader yet ({exc})") from None
    return module.EXERCISE


def find_question(qid: str) -> tuple[Exercise, Question]:
    """The exercise and question for an id such as ``"ex1.fgsm"``."""
    if not isinstance(qid, str) or "." not in qid:
        raise UnknownExerciseError(f"question ids look like 'ex1.fgsm', got {qid!r}")
    exercise = get_exercise(qid.split(".", 1)[0])
    try:
        return exercise, exercise.question(qid)
    except KeyError as exc:
        raise UnknownExerciseError(str(exc.args[0])) from None
