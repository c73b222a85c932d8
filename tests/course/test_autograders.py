"""The Gradescope and GitHub Classroom examples work, and `advlab grade` explains bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from advlab.course.autograders import build_classroom, build_gradescope
from advlab.course.cli import main

from .nbtools import EXERCISES, REPO, SOLUTIONS

NB = "ex1_fgsm_pgd.ipynb"


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_gradescope_run_autograder_grades_a_submission(tmp_path):
    root = tmp_path / "autograder"
    zip_path = build_gradescope("ex1", root / "source", limits="--cell-timeout 60")
    names = zipfile.ZipFile(zip_path).namelist()
    assert {"setup.sh", "run_autograder", "EXERCISE"} <= set(names)
    assert "advlab_src/advlab/course/grade.py" in names  # the grader is pinned inside the zip
    assert subprocess.run(["bash", "-n", str(root / "source" / "setup.sh")]).returncode == 0
    (root / "submission").mkdir()
    (root / "submission" / NB).write_bytes((SOLUTIONS / NB).read_bytes())
    (root / "submission" / "notes.txt").write_text("not a notebook")
    env = _env(
        AUTOGRADER_ROOT=str(root),
        ADVLAB_DATA=os.environ["ADVLAB_DATA"],
        ADVLAB_PYTHON=sys.executable,
    )
    proc = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == data["max_score"] == 10.0
    assert len(data["tests"]) == 9 and all(t["status"] == "passed" for t in data["tests"])


def test_gradescope_mode_without_a_notebook_scores_zero_with_a_message(tmp_path):
    (tmp_path / "submission").mkdir()
    out = tmp_path / "results" / "results.json"
    assert main(["grade", "ex1", str(tmp_path / "submission"), "--gradescope", str(out), "-q"]) == 0
    data = json.loads(out.read_text())
    assert data["score"] == 0 and "please submit ex1_fgsm_pgd.ipynb" in data["output"]


def test_github_classroom_pytest_grader(tmp_path):
    repo = tmp_path / "student-repo"
    test_file, workflow = build_classroom("ex1", repo)
    text = workflow.read_text()
    assert "classroom-resources/autograding-command-grader@v1" in text
    assert "EX1_FGSM_RESULTS" in text and "runners: ex1_fgsm,ex1_targeted_fgsm,ex1_pgd_linf" in text
    # the student solved FGSM only
    nb = json.loads((EXERCISES / NB).read_text())
    sol = json.loads((SOLUTIONS / NB).read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "fgsm":
            nb["cells"][i] = next(
                c
                for c in sol["cells"]
                if c["metadata"].get("nbgrader", {}).get("grade_id") == "fgsm"
            )
    (repo / NB).write_text(json.dumps(nb))
    env = _env(ADVLAB_AUTOGRADE_CACHE=str(tmp_path / "cache"))
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)]
    proc = subprocess.run(run, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert "2 failed, 1 passed" in proc.stdout, proc.stdout[-3000:]
    assert "replace the stub" in proc.stdout
    fgsm_only = subprocess.run(
        [*run, "-k", "ex1_fgsm"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert fgsm_only.returncode == 0, fgsm_only.stdout[-2000:]


def test_grade_explains_bad_input(tmp_path, capsys):
    assert main(["grade", "ex1", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["grade", "exercise-one", str(tmp_path)]) == 2
    assert "unknown exercise" in capsys.readouterr().err
    assert main(["grade", "ex1", str(tmp_path)]) == 2
    assert "no submissions" in capsys.readouterr().err


def test_grade_command_writes_results_and_summary(tmp_path, capsys):
    subs = tmp_path / "subs"
    (subs / "dana").mkdir(parents=True)
    (subs / "dana" / NB).write_bytes((SOLUTIONS / NB).read_bytes())
    (subs / "erin").mkdir()
    out = tmp_path / "grades"
    assert main(["grade", "ex1", str(subs), "-o", str(out), "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "dana" in printed and "graded 2 submissions" in printed
    assert json.loads((out / "dana" / "results.json").read_text())["score"] == 10.0
    erin = json.loads((out / "erin" / "results.json").read_text())
    assert erin["score"] == 0 and "no notebook" in erin["output"]
    assert (out / "summary.csv").read_text().count("\n") == 3
