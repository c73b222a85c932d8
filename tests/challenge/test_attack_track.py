"""The attack track end to end: notebooks graded in the course sandbox (real kernels), every
returned input re-checked by the grader, results written as Gradescope results.json, CSV, JSON and
the HTML page. One folder, three students, graded once for the module."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from advlab.challenge import grading, spec

from .conftest import STUDENT_PGD, accuracy_on, notebook, student_pgd

MIXED = STUDENT_PGD + '''
_pgd = attack

def attack(model, x, y, threat):
    """PGD, then spoils six images of each batch: four leave the ball, two are NaN."""
    x_adv = _pgd(model, x, y, threat)
    x_adv[0:4] = (x[0:4] + 0.6).clamp(0, 1)
    x_adv[4:6] = float("nan")
    return x_adv
'''
LABELS = "def attack(model, x, y, threat):\n    return y\n"
BS = 16


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attack")
    subs = root / "subs"
    subs.mkdir()
    (subs / "correct.ipynb").write_bytes(notebook(STUDENT_PGD))
    (subs / "mixed.ipynb").write_bytes(notebook("import torch", MIXED))
    (subs / "labels.ipynb").write_bytes(notebook(LABELS))
    ch = spec.new("test", seed=11, n=32, attack=spec.AttackTrack(
        model={"zoo": "mnist-standard"}, threat="linf:0.3", batch_size=BS,
        limits=spec.AttackLimits(call_timeout=120, submission_timeout=600, startup_timeout=300)))
    entries = grading.grade_track(ch, "attack", subs, root / "out", jobs=2)
    return ch, {e.student: e for e in entries}, root / "out"


def test_a_correct_attack_scores_the_accuracy_it_really_leaves(graded, zoo_standard):
    ch, entries, _ = graded
    x, y = spec.held_out(ch)
    threat = spec.parse_threat(ch.attack.threat)
    x_adv = torch.cat([student_pgd()(zoo_standard, xb, yb, threat)
                       for xb, yb in zip(x.split(BS), y.split(BS), strict=True)])
    e = entries["correct"]
    assert e.ranked and e.metrics["valid inputs"] == "32/32", e.problems
    assert e.metrics["accuracy left"] == pytest.approx(100 * accuracy_on(zoo_standard, x_adv, y))
    assert e.metrics["clean accuracy"] == pytest.approx(100 * accuracy_on(zoo_standard, x, y))
    assert e.isolation in ("uid", "namespaces", "none")


def test_spoiled_inputs_earn_no_credit(graded, zoo_standard):
    ch, entries, _ = graded
    x, y = spec.held_out(ch)
    threat = spec.parse_threat(ch.attack.threat)
    kept = []
    for xb, yb in zip(x.split(BS), y.split(BS), strict=True):
        adv = student_pgd()(zoo_standard, xb, yb, threat)
        adv[0:6] = xb[0:6]  # what the grader must use for the spoiled images
        kept.append(adv)
    e = entries["mixed"]
    assert e.metrics["valid inputs"] == "20/32"
    assert e.metrics["accuracy left"] == pytest.approx(
        100 * accuracy_on(zoo_standard, torch.cat(kept), y))
    assert e.metrics["accuracy left"] > entries["correct"].metrics["accuracy left"]
    assert "8 outside the threat model" in e.tests[0]["output"]
    assert "4 NaN or inf" in e.tests[0]["output"]


def test_returning_the_labels_scores_the_clean_accuracy(graded):
    _, entries, _ = graded
    e = entries["labels"]
    assert e.metrics["valid inputs"] == "0/32"
    assert e.metrics["accuracy left"] == e.metrics["clean accuracy"]
    assert e.score == 0.0 and "wrong shape" in e.tests[0]["output"]


def test_results_are_written_for_gradescope_and_the_board(graded):
    _, entries, out = graded
    for name, e in entries.items():
        res = json.loads((out / "attack" / name / "results.json").read_text())
        assert res["score"] == pytest.approx(round(e.score, 4))
        assert res["leaderboard"][0]["order"] == "asc"
    with open(out / "attack.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["student"] == "correct" and rows[0]["rank"] == "1"
    assert [r["student"] for r in rows][-1] == "labels"
    assert "correct" in (out / "index.html").read_text()
