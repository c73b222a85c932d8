"""A class written by determined students: each trick is tried from Python alone.

One folder of exercise-1 submissions is graded once, two at a time: a process that outlives
its kernel and rewrites the results, a submission that deletes its neighbours' folders, one
that reads ``solutions/``, one whose answer is a complex tensor full of NaN, one that hides its
use of the reference answers (obfuscated import, ``sys.modules`` cleaned, harness globals
replaced), symlinked and hard-linked submissions, and two hand-ins with the same name. Every
process a submission starts ends by itself within 60 s and writes only inside this test's
temporary folders.
"""

from __future__ import annotations

import json
import os
import time

import pytest

import advlab
from advlab.course import isolation
from advlab.course.engine import Limits
from advlab.course.grade import grade_folder, grade_submission

from .nbtools import EXERCISES, SOLUTIONS, load, with_cell, with_source, write

NB = "ex1_fgsm_pgd.ipynb"
# startup: the preamble imports torch, which takes minutes on a starved machine
LIMITS = Limits(
    cell_timeout=30, submission_timeout=240, call_timeout=15, memory_mb=2048, startup_timeout=180
)
FULL, FGSM = 10.0, 3.0
ISO = isolation.detect()
REPO_SOLUTIONS = os.path.join(os.path.dirname(os.path.dirname(advlab.__file__)), "solutions")
MARK = "advlab-test-daemon"

# A process in a new session that waits for the grader to finish, then rewrites its own
# results.json and summary row; it gives up by itself after 40 s.
DAEMON = """
import subprocess, sys
code = '''
import json, os, sys, time
out = sys.argv[1]
end = time.time() + 40
while time.time() < end:
    try:
        os.makedirs(os.path.join(out, "daemon"), exist_ok=True)
        with open(os.path.join(out, "daemon", "results.json"), "w") as fh:
            json.dump({"score": 100.0, "max_score": 10.0, "tests": []}, fh)
        with open(os.path.join(out, "summary.csv"), "a") as fh:
            fh.write("daemon,100,10,1000\\\\n")
    except OSError:
        pass
    time.sleep(0.2)
'''
subprocess.Popen([sys.executable, "-c", code, OUT, MARK], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""

# Deletes every other grading folder it can find, for 15 s, from a cell.
DELETER = """
import glob, os, shutil, tempfile, time
mine = os.path.dirname(os.getcwd())
end = time.time() + 15
while time.time() < end:
    for d in glob.glob(os.path.join(tempfile.gettempdir(), "..", "*", "advlab-grade-*")) + \\
            glob.glob("/tmp/advlab-grade-*") + glob.glob("/var/tmp/advlab-grade-*"):
        if os.path.realpath(d) != os.path.realpath(mine):
            shutil.rmtree(d, ignore_errors=True)
    time.sleep(0.05)
"""

# Takes every answer from the instructor's solution notebook, if it can read it.
READS_SOLUTIONS = f"""
import json
try:
    nb = json.load(open({os.path.join(REPO_SOLUTIONS, NB)!r}))
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and src.lstrip().startswith("def "):
            exec(src)
except OSError as exc:
    print("cannot read the solutions:", exc)
"""

COMPLEX_NAN = (
    "import torch\n"
    "def fgsm(model, x, y, eps):\n"
    "    return torch.full(x.shape, complex(float('nan'), float('nan')), dtype=torch.complex64)\n"
)

# Uses the reference answers, then tries to erase every trace the kernel could report.
HIDES_REFERENCE = """
import importlib, sys
_ref = importlib.import_module("advlab.course." + "gra" + "ders.ex1").ref_fgsm
def fgsm(model, x, y, eps):
    return _ref(model, x, y, eps)
for _name in [m for m in sys.modules if "ders" in m]:
    del sys.modules[_name]
import advlab.course.harness as _h
_h.provenance_flags = lambda *a, **k: []
_h.run_call.__globals__["provenance_flags"] = lambda *a, **k: []
"""


def _students(folder, out):
    sol, ex = load(SOLUTIONS / NB), load(EXERCISES / NB)
    subs = {
        "solution": sol,
        "daemon": with_cell(sol, 1, DAEMON.replace("OUT", repr(str(out))).replace(
            "MARK", repr(MARK))),
        "deletes_neighbours": with_cell(sol, 1, DELETER),
        "reads_solutions": with_cell(ex, len(ex["cells"]) - 1, READS_SOLUTIONS),
        "complex_nan": with_source(sol, "fgsm", COMPLEX_NAN),
        "hides_reference": with_source(sol, "fgsm", HIDES_REFERENCE),
        "dup": sol,
    }
    for name, nb in subs.items():
        write(nb, folder / f"{name}.ipynb")
    (folder / "dup").mkdir()
    write(ex, folder / "dup" / NB)  # the same student name as dup.ipynb, other contents
    (folder / "linked.ipynb").symlink_to(SOLUTIONS / NB)
    (folder / "linkdir").symlink_to(SOLUTIONS, target_is_directory=True)
    (folder / "inner").mkdir()
    (folder / "inner" / NB).symlink_to(SOLUTIONS / NB)
    outside = write(sol, folder.parent / f"{folder.name}-outside.ipynb")
    try:  # a hard link to a file outside the submissions folder
        os.link(outside, folder / "hardlinked.ipynb")
    except OSError:
        pass


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("hostile"), tmp_path_factory.mktemp("grades")
    _students(folder, out)
    results = grade_folder("ex1", folder, out, LIMITS, jobs=2)
    return {r.student: r for r in results}, out, folder


def _daemons_alive() -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as fh:
                if MARK.encode() in fh.read():
                    pids.append(int(name))
        except (OSError, ValueError):
            pass
    return pids


def test_a_process_that_outlives_its_kernel_is_killed_before_results_are_written(graded):
    results, out, _ = graded
    assert results["daemon"].score == FULL
    assert _daemons_alive() == [], "the submission's daemon survived grading"
    time.sleep(1.0)  # had it survived, it would rewrite these within 0.2 s
    data = json.loads((out / "daemon" / "results.json").read_text())
    assert data["score"] == FULL and data["tests"]
    assert "daemon,100" not in (out / "summary.csv").read_text()


def test_a_submission_cannot_delete_its_neighbours_work(graded):
    results, *_ = graded
    if ISO.weak:
        pytest.skip(f"no namespaces here ({ISO.detail}): neighbours share the user")
    for name in ("solution", "daemon", "hides_reference", "dup~1", "deletes_neighbours"):
        assert results[name].score == FULL, (name, results[name].output)


def test_solutions_are_not_visible_to_a_submission(graded):
    results, *_ = graded
    if ISO.weak:
        pytest.skip(f"no namespaces here ({ISO.detail}): the kernel can read the checkout")
    assert results["reads_solutions"].score == 0.0, results["reads_solutions"].output
    assert any("exec" in f for f in results["reads_solutions"].flags)


def test_a_complex_nan_answer_is_a_wrong_type_worth_zero(graded):
    results, *_ = graded
    res = results["complex_nan"]
    assert res.score == FULL - FGSM
    fgsm = [t for t in res.tests if t.name.startswith("ex1.fgsm")]
    assert fgsm and all(t.score == 0 and "wrong type" in t.output for t in fgsm)


def test_hiding_the_reference_answers_is_still_flagged(graded):
    results, *_ = graded
    res = results["hides_reference"]
    assert res.score == FULL
    text = " | ".join(res.flags)
    assert "reference answers" in text and "importlib" in text and "sys.modules" in text, text
    assert "the notebook imported the grader's reference answers" in text, text  # the kernel's
    assert results["solution"].flags == []


def test_links_are_refused_not_followed(graded):
    results, *_ = graded
    for name in ("linked", "linkdir", "inner") + (("hardlinked",) if "hardlinked" in results
                                                  else ()):
        res = results[name]
        assert res.score == 0.0, name
        assert any("refused" in p and "link" in p for p in res.problems), res.problems


def test_a_name_clash_grades_both_under_distinct_names_and_says_so(graded):
    results, out, _ = graded
    assert "dup" not in results
    # sorted entries: the folder dup/ (the untouched exercise) comes before dup.ipynb (solved)
    assert results["dup~0"].score == 0.0 and results["dup~1"].score == FULL
    for name in ("dup~0", "dup~1"):
        assert "name clash" in results[name].problems[0]
        assert "dup/ as dup~0" in results[name].problems[0]
        assert "dup.ipynb as dup~1" in results[name].problems[0]
        assert json.loads((out / name / "results.json").read_text())["score"] == (
            results[name].score
        )
    summary = (out / "summary.csv").read_text()
    assert summary.count("name clash") == 2
    assert len(summary.strip().splitlines()) == 1 + len(results)


def test_the_isolation_level_is_recorded(graded):
    results, out, _ = graded
    assert {r.isolation for r in results.values() if r.tests and r.sha256} == {ISO.level}
    data = json.loads((out / "solution" / "results.json").read_text())
    assert data["extra_data"]["isolation"] == ISO.level


def test_grading_twice_gives_the_same_scores(graded):
    results, _, folder = graded
    for name in ("complex_nan", "hides_reference"):
        raw = (folder / f"{name}.ipynb").read_bytes()
        again = grade_submission("ex1", raw, name, LIMITS)
        assert [(t.name, t.score) for t in again.tests] == [
            (t.name, t.score) for t in results[name].tests
        ]
        assert again.flags == results[name].flags
