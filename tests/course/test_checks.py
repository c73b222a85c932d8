"""Student feedback from `check(...)` and the graders' own consistency (in-process, no kernel)."""

from __future__ import annotations

import importlib

import pytest
import torch

from advlab.course import check, get_exercise
from advlab.course.checks import run_cases
from advlab.course.registry import UnknownExerciseError, available


def _references():
    for name in available():
        module = importlib.import_module(f"advlab.course.graders.{name}")
        for q in module.EXERCISE.questions:
            yield q.qid, getattr(module, f"ref_{q.func}")


@pytest.mark.parametrize(
    "qid,ref", list(_references()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_reference_answer_passes_all_cases(qid, ref):
    report = run_cases(qid, ref, hidden=True)
    assert report.points == report.max_points > 0, [r.message for r in report.results]


def test_every_question_has_hidden_and_visible_cases():
    for name in available():
        ex = get_exercise(name)
        assert len(ex.questions) >= 3
        for q in ex.questions:
            kinds = {c.hidden for c in q.cases()}
            assert kinds == {True, False}, q.qid


def _no_clip_fgsm(model, x, y, eps):
    x = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), x)
    return (x + eps * g.sign()).detach()


def test_feedback_names_the_input_summarises_and_hints_but_gives_no_values(capsys):
    report = check("ex1.fgsm", _no_clip_fgsm)
    out = capsys.readouterr().out
    assert report.points < report.max_points
    assert "[FAIL]" in out and "input: 8 MNIST test images" in out
    assert "expected: shape (8, 1, 28, 28)" in out and "got:" in out
    assert "values in [0, 1]" in out and "hint:" in out
    assert "tensor(" not in out and "hidden" not in out.split("hint:")[0].lower()


def test_partial_points():
    def fgsm_only_small_eps(model, x, y, eps):
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(x), y), x)
        out = (x + eps * g.sign()).detach()
        return out.clamp(0, 1) if eps < 0.2 else out

    report = check("ex1.fgsm", fgsm_only_small_eps, quiet=True)
    assert (report.points, report.max_points) == (1.0, 2.0)


def test_a_stub_and_a_crash_get_clear_messages():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    def crash(*args, **kwargs):
        return [][1]

    msgs = [r.message for r in run_cases("ex2.l2_step", stub).results]
    assert all("replace the stub" in m for m in msgs)
    msgs = [r.message for r in run_cases("ex2.l2_step", crash).results]
    assert all("IndexError" in m for m in msgs)


def test_check_is_silent_while_grading_and_strict_under_nbgrader(monkeypatch, capsys):
    monkeypatch.setenv("ADVLAB_GRADING", "1")
    assert check("ex1.fgsm", _no_clip_fgsm) is None
    assert capsys.readouterr().out == ""
    monkeypatch.delenv("ADVLAB_GRADING")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="ex1.fgsm"):
        check("ex1.fgsm", _no_clip_fgsm, quiet=True)


def test_unknown_names_are_explained():
    with pytest.raises(UnknownExerciseError, match="use one of ex1"):
        get_exercise("ex42")
    with pytest.raises(UnknownExerciseError, match="its questions are"):
        check("ex1.nope", _no_clip_fgsm)
    with pytest.raises(TypeError, match="needs your function"):
        check("ex1.fgsm", 3)
