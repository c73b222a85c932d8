"""`advlab course release`: exercises/ is generated from solutions/ and must stay in sync."""

from __future__ import annotations

import json

import nbformat
import pytest

from advlab.course.cli import main
from advlab.course.release import (
    MarkerError,
    check_release,
    release_notebook,
    strip_source,
    write_release,
)

from .nbtools import EXERCISES, SOLUTIONS, load, source


def test_committed_exercises_are_up_to_date_with_solutions():
    diffs = check_release(SOLUTIONS, EXERCISES)
    assert diffs == [], "run `advlab course release`: " + "; ".join(
        f"{d.name}: {d.problem}" for d in diffs
    )


def test_there_are_six_exercises_with_three_graded_questions_each():
    names = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))
    assert len(names) >= 6, names
    for name in names:
        nb = load(SOLUTIONS / name)
        graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
        assert len(graded) >= 3, name


def test_solution_regions_become_stubs_at_their_indentation():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
    assert strip_source(src, "code") == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    )


def test_hidden_tests_are_removed_and_markdown_answers_stubbed():
    src = "check('a', f)\n### BEGIN HIDDEN TESTS\ncheck('a', f, hidden=True)\n### END HIDDEN TESTS"
    assert strip_source(src, "code") == "check('a', f)"
    md = "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert strip_source(md, "markdown") == "Why?\nYOUR ANSWER HERE"


@pytest.mark.parametrize(
    "src",
    [
        "### BEGIN SOLUTION\nx = 1\n",
        "x = 1\n### END SOLUTION\n",
        "### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n### END SOLUTION",
        "### BEGIN HIDDEN TESTS\n### END SOLUTION\n",
    ],
)
def test_unbalanced_markers_are_errors_that_say_where(src):
    with pytest.raises(MarkerError, match="cell 3"):
        strip_source(src, "code", "nb.ipynb, cell 3")


def test_released_notebooks_hold_no_answers_and_no_outputs():
    for path in EXERCISES.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "hidden=True"):
            assert marker not in text, (path.name, marker)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code)
        assert sum("raise NotImplementedError()" in c.source for c in code) >= 3


def test_a_changed_solution_makes_the_release_check_fail(tmp_path):
    sols, exs = tmp_path / "solutions", tmp_path / "exercises"
    sols.mkdir()
    for p in SOLUTIONS.glob("*.ipynb"):
        (sols / p.name).write_bytes(p.read_bytes())
    write_release(sols, exs)
    assert check_release(sols, exs) == []
    name = sorted(p.name for p in sols.glob("*.ipynb"))[0]
    nb = load(sols / name)
    nb["cells"][0]["source"] = source(nb["cells"][0]) + "\nA new sentence."
    (sols / name).write_text(json.dumps(nb))
    assert [d.name for d in check_release(sols, exs)] == [name]
    (exs / "orphan.ipynb").write_text(json.dumps(release_notebook(nb)))
    assert {d.name for d in check_release(sols, exs)} == {name, "orphan.ipynb"}
    assert main(["course", "release", "--solutions", str(sols), "--out", str(exs), "--check"]) == 1
    assert main(["course", "release", "--solutions", str(sols), "--out", str(exs)]) == 0
    assert check_release(sols, exs) == []
    assert not (exs / "orphan.ipynb").exists()


def test_release_reports_a_missing_solutions_folder(tmp_path, capsys):
    code = main(
        ["course", "release", "--solutions", str(tmp_path / "nope"), "--out", str(tmp_path / "ex")]
    )
    assert code == 2
    assert "solutions folder" in capsys.readouterr().err


def test_the_grader_skips_cells_tagged_skip_grading_and_nothing_else():
    from advlab.course import get_exercise
    from advlab.course.grade import read_notebook_cells

    for path in SOLUTIONS.glob("*.ipynb"):
        nb = load(path)
        funcs = [q.func for q in get_exercise(path.name).questions]
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "skip-grading" in c["metadata"].get("tags", [])]
        assert len(read_notebook_cells(path.read_bytes())) == len(code) - len(tagged)
        for cell in tagged:  # only ungraded exploration may be skipped
            assert "nbgrader" not in cell["metadata"]
            assert not any(f"def {f}(" in source(cell) for f in funcs), path.name
    ex5 = (SOLUTIONS / "ex5_gradient_masking.ipynb").read_bytes()
    assert not any("diagnose(" in c for c in read_notebook_cells(ex5))
