"""How a graded question is described: cases (inputs), judges (comparisons) and scoring.

A :class:`Question` names the function a student writes and builds a list of :class:`Case` s.
Each case holds one or more :class:`Call` s (the inputs the student's function is called with)
and a ``judge`` that turns the :class:`Outcome` s of those calls into a :class:`Verdict`. The
judge closes over reference answers computed by the grader's own code, so it runs wherever the
grader runs: in the student's kernel for ``check(...)`` feedback, in the grader process for
``advlab grade``. Feedback never prints a reference answer, only summaries of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Call:
    """Positional and keyword arguments for one call of the student's function."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What one call did: ``status`` is ok, error, timeout or missing.

    ``after`` maps each model argument's key to its state dict after the call (for functions
    that train a model in place).
    """

    status: str
    value: Any = None
    after: dict = field(default_factory=dict)
    error: str = ""


@dataclass
class Verdict:
    """A judge's decision; ``expected``/``got`` are summaries, never the reference itself."""

    passed: bool
    expected: str = ""
    got: str = ""
    note: str = ""


@dataclass
class Case:
    """One graded input: its calls, the judge, its points and whether students see it."""

    name: str
    calls: list[Call]
    judge: Callable[[list[Outcome]], Verdict]
    describe: str = ""
    points: float = 1.0
    hidden: bool = False


@dataclass
class Question:
    """A graded question: the student's function ``func`` and a builder of its cases."""

    qid: str
    func: str
    title: str
    hint: str
    build: Callable[[], list[Case]]
    _cases: list[Case] | None = field(default=None, repr=False)

    def cases(self) -> list[Case]:
        """The question's cases (built once, then cached)."""
        if self._cases is None:
            self._cases = self.build()
        return self._cases

    @property
    def max_points(self) -> float:
        """Total points of all cases, hidden ones included."""
        return sum(c.points for c in self.cases())


@dataclass
class Exercise:
    """A notebook of questions, e.g. ``ex1`` with ``solutions/ex1_fgsm_pgd.ipynb``."""

    name: str
    title: str
    notebook: str
    questions: list[Question]

    def question(self, qid: str) -> Question:
        """The question with id ``qid`` (e.g. ``"ex1.fgsm"``)."""
        for q in self.questions:
            if q.qid == qid:
                return q
        known = ", ".join(q.qid for q in self.questions)
        raise KeyError(f"no question {qid!r} in {self.name}; its questions are: {known}")

    @property
    def max_points(self) -> float:
        """Total points of the exercise."""
        return sum(q.max_points for q in self.questions)


@dataclass
class CaseResult:
    """The graded result of one case."""

    name: str
    points: float
    max_points: float
    passed: bool
    message: str
    hidden: bool = False


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _failure_without_value(outcome: Outcome, func: str, timeout_note: str) -> str | None:
    """A message for a call that produced no value, or None when it returned normally."""
    if outcome.status == "missing":
        return (
            f"`{func}` is not defined in the notebook (was the cell that defines it deleted, "
            f"renamed or never run?)"
        )
    if outcome.status == "timeout":
        return f"`{func}` did not finish {timeout_note}: look for an endless loop"
    if outcome.status == "error":
        if outcome.error.startswith("NotImplementedError"):
            return f"`{func}` still raises NotImplementedError: replace the stub with your code"
        return f"`{func}` raised {_short(outcome.error)}"
    return None


def score_case(
    case: Case, outcomes: list[Outcome], func: str, timeout_note: str = "in time"
) -> CaseResult:
    """Judge one case from the outcomes of its calls; any exception in the judge fails it."""
    for outcome in outcomes:
        problem = _failure_without_value(outcome, func, timeout_note)
        if problem is not None:
            return CaseResult(case.name, 0.0, case.points, False, problem, case.hidden)
    if len(outcomes) != len(case.calls):
        msg = "the grader got no result for this case (the kernel stopped early)"
        return CaseResult(case.name, 0.0, case.points, False, msg, case.hidden)
    try:
        verdict = case.judge(outcomes)
    except Exception as exc:  # a malformed return value must not crash grading
        verdict = Verdict(False, note=f"could not check the returned value ({_short(exc)})")
    message = format_verdict(verdict)
    points = case.points if verdict.passed else 0.0
    return CaseResult(case.name, points, case.points, verdict.passed, message, case.hidden)


def format_verdict(v: Verdict) -> str:
    """Multi-line feedback text of a verdict (empty for a pass without a note)."""
    lines = []
    if v.expected:
        lines.append(f"expected: {v.expected}")
    if v.got:
        lines.append(f"got:      {v.got}")
    if v.note:
        lines.append(v.note)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Judging helpers


def describe_tensor(t: torch.Tensor) -> str:
    """Shape and a few summary numbers of a tensor (never its values)."""
    if t.numel() == 0:
        return f"an empty tensor of shape {tuple(t.shape)}"
    dt = str(t.dtype).replace("torch.", "")
    if t.layout != torch.strided or t.is_quantized or t.is_complex() or t.device.type == "meta":
        return f"shape {tuple(t.shape)}, dtype {dt}, layout {t.layout}, device {t.device}"
    f = t.detach().double()
    return (
        f"shape {tuple(t.shape)}, dtype {dt}, "
        f"mean {f.mean().item():.4g}, min {f.min().item():.4g}, max {f.max().item():.4g}"
    )


def describe_value(v: Any) -> str:
    """A short description of any returned value."""
    if isinstance(v, torch.Tensor):
        return "a tensor: " + describe_tensor(v)
    if isinstance(v, (float, int)) and not isinstance(v, bool):
        return f"the number {v:.4g}"
    if isinstance(v, dict) and v.get("__unserializable__"):
        return f"an object of type {v['__unserializable__']}"
    if isinstance(v, (tuple, list)):
        return f"a {type(v).__name__} of length {len(v)}"
    return f"a value of type {type(v).__name__}"


DTYPE_KINDS = {
    "float": "real floating-point",
    "int": "integer",
    "bool": "boolean",
}


def dtype_kind(dtype: torch.dtype) -> str:
    """``"float"``, ``"int"``, ``"bool"`` or ``"complex"`` for a torch dtype."""
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "bool" if dtype == torch.bool else "int"


def type_verdict(
    got: Any, shape: tuple, what: str = "a tensor", kind: str = "float", device=None
) -> Verdict | None:
    """A failing "wrong type" verdict unless ``got`` is what a question asks for; else None.

    ``got`` must be a plain dense ``torch.Tensor`` (not sparse, quantized or on the ``meta``
    device) with a dtype of ``kind`` (:data:`DTYPE_KINDS`: ``"float"`` means real floating
    point, so a complex tensor is refused even when its real part is right), on ``device``
    (default: the CPU, where the grader's references live), of ``shape``, and with finite
    entries only (no NaN, no inf). The check runs before any comparison: converting first would
    silently drop an imaginary part or turn NaN into a number.
    """
    article = "an" if DTYPE_KINDS[kind][0] in "aeiou" else "a"
    want = f"{what}: {article} {DTYPE_KINDS[kind]} tensor of shape {tuple(shape)}"
    if not isinstance(got, torch.Tensor):
        return Verdict(False, want, "wrong type: " + describe_value(got))
    if got.layout != torch.strided or got.is_quantized:
        layout = "quantized" if got.is_quantized else str(got.layout).replace("torch.", "")
        return Verdict(False, want, f"wrong type: a {layout} tensor", "return a dense tensor")
    got_kind = dtype_kind(got.dtype)
    if got_kind != kind:
        dt = str(got.dtype).replace("torch.", "")
        name = DTYPE_KINDS.get(got_kind, got_kind)
        article = "an" if name[0] in "aeiou" else "a"
        return Verdict(
            False, want, f"wrong type: {article} {name} tensor (dtype {dt})",
            f"return {article} {DTYPE_KINDS[kind]} tensor",
        )
    device = torch.device("cpu") if device is None else torch.device(device)
    if got.device != device:
        return Verdict(
            False, want, f"wrong type: a tensor on device {got.device}",
            f"return the tensor on {device}, the device of the inputs",
        )
    if tuple(got.shape) != tuple(shape):
        return Verdict(False, want, f"a tensor of shape {tuple(got.shape)}")
    if got.numel() and not bool(torch.isfinite(got).all()):
        return Verdict(False, f"{what} with finite entries", "a tensor containing NaN or inf")
    return None


def shape_verdict(got: Any, shape: tuple, what: str = "a tensor") -> Verdict | None:
    """A failing verdict unless ``got`` is a finite, real floating-point CPU tensor of ``shape``.

    The shared first step of every tensor judge (see :func:`type_verdict`).
    """
    return type_verdict(got, shape, what, "float")


def close_verdict(
    got: Any,
    expected: torch.Tensor,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    summary: Callable[[torch.Tensor], str] = describe_tensor,
    what: str = "a tensor",
) -> Verdict:
    """Compare a returned tensor with the reference entry by entry, reporting only summaries.

    The value is first checked for what it is (:func:`type_verdict`: the dtype kind, device and
    shape of ``expected``, finite entries); a complex, integer, sparse or NaN-holding tensor is
    a "wrong type" failure, whatever its entries would compare like after a conversion.
    """
    shape, kind = tuple(expected.shape), dtype_kind(expected.dtype)
    bad = type_verdict(got, shape, what, kind, expected.device)
    if bad is not None:
        return bad
    g, e = got.detach().double(), expected.detach().double()
    diff = (g - e).abs()
    wrong = diff > atol + rtol * e.abs()
    if not wrong.any():
        return Verdict(True)
    frac = wrong.double().mean().item()
    note = f"{frac:.1%} of the entries are off (largest difference {diff.max().item():.3g})"
    return Verdict(False, summary(expected), summary(got), note)


def number_verdict(got: Any, expected: float, tol: float, what: str = "a number") -> Verdict:
    """Compare a returned real number (or one-element real tensor) with ``expected`` within
    ``tol``. Booleans, complex numbers, NaN and inf are a wrong type or a wrong value, never
    converted into a passing number."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        if got.layout != torch.strided or dtype_kind(got.dtype) not in ("float", "int"):
            dt = str(got.dtype).replace("torch.", "")
            return Verdict(False, f"{what} (a real number)", f"wrong type: a tensor of dtype {dt}")
        got = got.detach().cpu().item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return Verdict(False, f"{what} (a real number)", "wrong type: " + describe_value(got))
    if not math.isfinite(float(got)):
        return Verdict(False, f"{what} (a finite number)", f"{float(got)}")
    if not abs(float(got) - expected) <= tol:
        return Verdict(
            False,
            f"{what} within {tol:g} of the right value",
            f"{float(got):.4g}, which is off by more than {tol:g}",
        )
    return Verdict(True)
