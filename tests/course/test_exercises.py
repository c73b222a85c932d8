"""CI's promise: every solution notebook scores full marks and every untouched exercise zero.

Both are graded the way students are: each in a fresh sandboxed kernel, judged in this process.
"""

from __future__ import annotations

import pytest

from advlab.course import available, get_exercise
from advlab.course.engine import Limits
from advlab.course.grade import grade_folder

from .nbtools import EXERCISES, SOLUTIONS

LIMITS = Limits(cell_timeout=120, submission_timeout=300, call_timeout=30)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    results = {}
    for name in available():
        ex = get_exercise(name)
        folder = tmp_path_factory.mktemp(name)
        (folder / "solution.ipynb").write_bytes((SOLUTIONS / ex.notebook).read_bytes())
        (folder / "exercise.ipynb").write_bytes((EXERCISES / ex.notebook).read_bytes())
        for res in grade_folder(ex, folder, None, LIMITS, jobs=2):
            results[(name, res.student)] = res
    return results


@pytest.mark.parametrize("name", available())
def test_solution_scores_full_marks(graded, name):
    res = graded[(name, "solution")]
    assert res.score == res.max_score > 0, res.output
    assert res.problems == [], res.problems  # every cell of the solution runs cleanly


@pytest.mark.parametrize("name", available())
def test_untouched_exercise_scores_zero_without_crashing(graded, name):
    res = graded[(name, "exercise")]
    assert res.score == 0 and res.max_score > 0
    assert all(t.status == "failed" for t in res.tests)
    stubbed = [t for t in res.tests if "replace the stub" in t.output]
    assert len(stubbed) == len(res.tests), res.output
    assert all("NotImplementedError" in p for p in res.problems), res.problems
