"""The grader survives faulty and hostile submissions and grades each one correctly.

One class folder of exercise-1 submissions is graded once (two at a time, as a course would);
each test then checks one student's score. Every submission also proves that the others were
unaffected, since they share the folder and the run.
"""

from __future__ import annotations

import json

import pytest

from advlab.course import isolation
from advlab.course.engine import Limits
from advlab.course.grade import grade_folder, grade_submission

from .nbtools import (
    EXERCISES,
    SOLUTIONS,
    index_of,
    load,
    with_cell,
    with_solution_from,
    with_source,
    without_check_cells,
    write,
)

NB = "ex1_fgsm_pgd.ipynb"
# a cell gets 20 s: the setup cell trains a tiny net, which takes a few seconds on a busy machine;
# a graded call gets 15 s: two kernels share 2 cores here, one of them often in an infinite loop;
# memory: the grader's default 2048 MB (at 1536 MB, torch 2.15's kernel failed legit hidden cases
# after the memory hog's MemoryError, while torch 2.14 passed)
LIMITS = Limits(cell_timeout=20, submission_timeout=240, call_timeout=15, memory_mb=2048)
FULL, FGSM, TARGETED, PGD = 10.0, 3.0, 3.0, 4.0

MONKEYPATCH = """
import torch
import advlab, advlab.course, advlab.course.checks, advlab.course.spec, advlab.attacks
import advlab.course.graders.ex1 as g
def check(*args, **kwargs):
    print("All tests passed! 10/10")
advlab.course.check = advlab.course.checks.check = check
advlab.course.spec.score_case = lambda *a, **k: None
advlab.course.spec.close_verdict = lambda *a, **k: None
g.EXERCISE.questions.clear()
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
advlab.attacks.fgsm = lambda *a, **k: None
"""


def _students(tmp_path_factory):
    sol, ex = load(SOLUTIONS / NB), load(EXERCISES / NB)
    folder = tmp_path_factory.mktemp("class")
    subs = {
        "solution": sol,
        "untouched_exercise": ex,
        "syntax_error": with_source(sol, "fgsm", "def fgsm(model, x, y, eps)\n    return x\n"),
        "exception": with_cell(
            with_source(
                sol,
                "targeted_fgsm",
                "def targeted_fgsm(model, x, target, eps):\n    return 1 / 0\n",
            ),
            1,
            "raise RuntimeError('boom')",
        ),
        "infinite_loop_cell": with_cell(sol, 1, "while True:\n    pass"),
        "infinite_loop_function": with_source(
            sol, "fgsm", "def fgsm(model, x, y, eps):\n    while True:\n        pass\n"
        ),
        "stub_left": with_solution_from(ex, sol, "fgsm"),
        "sys_exit": with_cell(
            with_source(
                sol,
                "targeted_fgsm",
                "import sys\ndef targeted_fgsm(model, x, target, eps):\n    sys.exit(1)\n",
            ),
            1,
            "import sys\nsys.exit()",
        ),
        "os_exit_cell": with_cell(sol, 1, "import os\nos._exit(0)"),
        "os_exit_function": with_source(
            sol, "pgd_linf", "import os\ndef pgd_linf(*args, **kwargs):\n    os._exit(3)\n"
        ),
        "memory_hog": with_cell(
            with_cell(sol, 1, "blob = bytearray(10**12)"),
            1,
            "def hog():\n    chunks = []\n    while True:\n"
            "        chunks.append(bytearray(10**8))\nhog()",
        ),
        "prints_all_passed": with_cell(ex, 1, "print('All tests passed! 10/10 points')"),
        "checks_edited_or_deleted": with_cell(
            without_check_cells(sol), 1, "print('ex1.fgsm: 3/3 points')\nFULL_MARKS = True"
        ),
        "monkeypatch_stubs": with_cell(ex, 1, MONKEYPATCH),
        "monkeypatch_correct": with_cell(sol, 1, MONKEYPATCH),
    }
    paths = {name: write(nb, folder / f"{name}.ipynb") for name, nb in subs.items()}
    overwrite = (
        "import glob, os\n"
        f"targets = glob.glob('*') + glob.glob('../*/*') + glob.glob({str(folder)!r} + '/*')\n"
        "for p in targets:\n"
        "    try:\n"
        "        with open(p, 'w') as fh:\n"
        "            fh.write('overwritten')\n"
        "    except OSError:\n"
        "        pass\n"
    )
    paths["overwrites_neighbours"] = write(
        with_cell(sol, 1, overwrite), folder / "overwrites_neighbours.ipynb"
    )
    startup = (
        "import os, pathlib\n"
        "d = pathlib.Path(os.environ['IPYTHONDIR']) / 'profile_default' / 'startup'\n"
        "d.mkdir(parents=True, exist_ok=True)\n"
        "(d / '00-sabotage.py').write_text('import os; os._exit(1)')\n"
    )
    paths["startup_file_then_crash"] = write(
        with_cell(with_cell(sol, 1, "import os\nos._exit(0)"), 1, startup),
        folder / "startup_file_then_crash.ipynb",
    )
    copy_ref = "from advlab.course.graders.ex1 import ref_fgsm as fgsm"
    paths["copies_reference"] = write(
        with_cell(sol, index_of(sol, "fgsm"), copy_ref), folder / "copies_reference.ipynb"
    )
    paths["not_json"] = folder / "not_json.ipynb"
    paths["not_json"].write_text('{"cells": [ this is not json')
    return folder, paths


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder, paths = _students(tmp_path_factory)
    originals = {name: p.read_bytes() for name, p in paths.items()}
    out = tmp_path_factory.mktemp("grades")
    results = grade_folder("ex1", folder, out, LIMITS, jobs=2)
    return {r.student: r for r in results}, out, paths, originals


EXPECTED = {
    "solution": FULL,
    "untouched_exercise": 0.0,
    "syntax_error": FULL - FGSM,
    "exception": FULL - TARGETED,
    "infinite_loop_cell": FULL,
    "infinite_loop_function": FULL - FGSM,
    "stub_left": FGSM,
    "sys_exit": FULL - TARGETED,
    "os_exit_cell": FULL,
    "os_exit_function": FULL - PGD,
    "memory_hog": FULL,
    "prints_all_passed": 0.0,
    "checks_edited_or_deleted": FULL,
    "monkeypatch_stubs": 0.0,
    "monkeypatch_correct": FULL,
    "overwrites_neighbours": FULL,
    "startup_file_then_crash": FULL,
    "copies_reference": FULL,
    "not_json": 0.0,
}


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_submission_gets_the_right_score(graded, student):
    results, *_ = graded
    res = results[student]
    assert res.max_score == FULL
    assert res.score == EXPECTED[student], res.output


def test_problems_are_reported_to_the_student(graded):
    results, *_ = graded
    assert "not a valid notebook" in results["not_json"].output
    assert any("timeout" in p for p in results["infinite_loop_cell"].problems)
    assert any("dead" in p or "died" in p for p in results["os_exit_cell"].problems)
    assert any("MemoryError" in p for p in results["memory_hog"].problems)
    fgsm_tests = [t for t in results["infinite_loop_function"].tests if "ex1.fgsm" in t.name]
    assert all("did not finish" in t.output for t in fgsm_tests)
    stub = [t for t in results["stub_left"].tests if "ex1.pgd_linf" in t.name]
    assert all("NotImplementedError" in t.output for t in stub)
    syntax = [t for t in results["syntax_error"].tests if "ex1.fgsm" in t.name]
    assert all("not defined" in t.output for t in syntax)


def test_copying_the_reference_answers_is_flagged_for_review(graded):
    results, out, *_ = graded
    flags = results["copies_reference"].flags
    assert any("not defined in a notebook cell" in f for f in flags), flags
    assert any("reference answers" in f for f in flags), flags
    assert "Flagged for review" in results["copies_reference"].output
    assert results["solution"].flags == []
    assert "copies_reference" in (out / "summary.csv").read_text().split("flags")[1]


def test_feedback_never_contains_reference_values(graded):
    results, *_ = graded
    for t in results["untouched_exercise"].tests + results["syntax_error"].tests:
        assert t.status in ("passed", "failed")
        assert "tensor(" not in t.output


def test_results_files_are_gradescope_format(graded):
    results, out, *_ = graded
    data = json.loads((out / "solution" / "results.json").read_text())
    assert data["score"] == FULL and data["max_score"] == FULL
    assert sum(t["max_score"] for t in data["tests"]) == FULL
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert t["visibility"] in ("visible", "after_published")
    assert any(t["visibility"] == "after_published" for t in data["tests"])
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("student,score,max_score,percent,ex1.fgsm")
    assert len(rows) == 1 + len(EXPECTED)


def test_submissions_were_read_before_anyone_could_overwrite_them(graded):
    _, _, paths, originals = graded
    if isolation.detect().weak:  # the kernel runs as the grader's user: the hostile cell wrote
        assert paths["solution"].read_text() == "overwritten"
    else:  # in its sandbox, the submissions folder is not even visible
        assert paths["solution"].read_bytes() == originals["solution"]
    # either way every neighbour was graded from its original bytes (see the scores above).


def test_grading_twice_gives_the_same_scores(graded):
    results, _, _, originals = graded
    for name in ("exception", "stub_left"):
        again = grade_submission("ex1", originals[name], name, LIMITS)
        assert [(t.name, t.score, t.status) for t in again.tests] == [
            (t.name, t.score, t.status) for t in results[name].tests
        ]
        assert again.sha256 == results[name].sha256
