"""The attack track: a student's notebook defines ``attack(model, x, y, threat)``; the grader runs
it in the course sandbox on the held-out images and re-checks everything it returns.

Per batch the student's function gets the model (a fresh copy, eval mode), images ``x``
(B, 1, 28, 28) float32 in [0, 1], labels ``y`` (B,) int64 and the threat model (e.g.
``Linf(0.3)``), and returns ``x_adv`` of the same shape and dtype (or an advlab
``AttackResult``). The grader (:func:`recheck`), in its own process, keeps a returned image only
if it is finite, inside [0, 1] and inside the threat model around its own clean image; every
other image (and every image of a batch that raised, timed out, came back with the wrong shape,
dtype or type) counts as the clean image. Its own forward pass on that decides the accuracy the
attack leaves (lower is better): an attack can never be credited with more than its valid
inputs earn.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import kernel
from .results import Entry, test
from .spec import Challenge, attack_model, held_out, parse_threat, threat_payload

MAX_OUTPUT_BYTES = 256 * 2**20
ATOL = 1e-6
REASONS = {
    "valid": "valid",
    "no_result": "no result (the call raised, timed out, or the function is missing)",
    "wrong_type": "not a tensor",
    "wrong_shape": "wrong shape",
    "wrong_dtype": "wrong dtype",
    "not_finite": "NaN or inf",
    "outside_box": "outside [0, 1]",
    "outside_threat": "outside the threat model",
}


@dataclass
class Recheck:
    """The grader's verdict on one attack: per image, whether the returned input was kept
    (``reason[i] == "valid"``) and whether the model still classifies the kept input (or the
    clean image, when nothing valid came back) correctly."""

    clean: torch.Tensor
    correct: torch.Tensor
    reasons: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.clean.numel())

    @property
    def clean_accuracy(self) -> float:
        return self.clean.float().mean().item()

    @property
    def accuracy_left(self) -> float:
        """Accuracy on the kept inputs (the attack's score; lower is better)."""
        return self.correct.float().mean().item()

    @property
    def n_valid(self) -> int:
        return sum(r == "valid" for r in self.reasons)

    @property
    def success_rate(self) -> float:
        """Share of the clean-correct images whose kept input is misclassified."""
        k = int(self.clean.sum())
        return float((self.clean & ~self.correct).sum()) / k if k else 0.0

    def counts(self) -> dict[str, int]:
        """Images per reason (only reasons that occur)."""
        out: dict[str, int] = {}
        for r in self.reasons:
            out[r] = out.get(r, 0) + 1
        return out


def _batch_reasons(x: torch.Tensor, value, threat) -> tuple[list[str], str]:
    """Per-image reason codes for one batch's returned ``value``, and a note for the student."""
    b = x.shape[0]
    if value is None:
        return ["no_result"] * b, ""
    if not isinstance(value, torch.Tensor):
        what = value.get("__unserializable__") if isinstance(value, dict) else None
        return ["wrong_type"] * b, f"returned {what or type(value).__name__}, not a tensor"
    if tuple(value.shape) != tuple(x.shape):
        return ["wrong_shape"] * b, f"returned shape {tuple(value.shape)}, not {tuple(x.shape)}"
    if value.dtype != x.dtype:
        return ["wrong_dtype"] * b, f"returned dtype {value.dtype}, not {x.dtype}"
    finite = torch.isfinite(value).flatten(1).all(1)
    safe = torch.where(finite.view(-1, *[1] * (x.dim() - 1)), value, x)
    in_box = ((safe >= -ATOL) & (safe <= 1 + ATOL)).flatten(1).all(1)
    in_threat = threat.contains(x, safe, atol=ATOL)
    reasons = []
    for f, bx, th in zip(finite.tolist(), in_box.tolist(), in_threat.tolist(), strict=True):
        reasons.append("not_finite" if not f else "outside_box" if not bx
                       else "outside_threat" if not th else "valid")
    return reasons, ""


def recheck(model, x, y, threat, values: list, batch_size: int) -> Recheck:
    """Judge the returned inputs: ``values[k]`` is what the call on images
    ``[k * batch_size, (k + 1) * batch_size)`` returned (None when it gave nothing).

    x (N, C, H, W) in [0, 1], y (N,); ``model`` is the grader's own copy (mode restored).
    """
    from ..attacks.base import frozen

    reasons: list[str] = []
    notes: list[str] = []
    kept = x.clone()
    for k, start in enumerate(range(0, x.shape[0], batch_size)):
        xb = x[start:start + batch_size]
        value = values[k] if k < len(values) else None
        r, note = _batch_reasons(xb, value, threat)
        if note:
            notes.append(f"batch {k + 1}: {note}")
        ok = torch.tensor([c == "valid" for c in r])
        if ok.any():
            kept[start:start + batch_size][ok] = value[ok].to(x.dtype)
        reasons += r
    with frozen(model), torch.no_grad():
        clean = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)]) == y
        pred = torch.cat([model(kept[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return Recheck(clean, pred == y, reasons, notes)


# ---------------------------------------------------------------------------------------------
# Running the notebook in the course sandbox


def limits_of(ch: Challenge):
    """The course sandbox's :class:`~advlab.course.engine.Limits` for one submission."""
    from ..course.engine import Limits

    lim = ch.attack.limits
    return Limits(cell_timeout=lim.cell_timeout, submission_timeout=lim.submission_timeout,
                  call_timeout=lim.call_timeout, memory_mb=lim.memory_mb,
                  startup_timeout=lim.startup_timeout)


@dataclass
class SandboxRun:
    """What came back from the kernel: one outcome dict per batch, the cell logs, the run of
    the attack cell, the isolation level and any process that outlived the kernel."""

    outcomes: list[dict]
    problems: list[str]
    isolation: str
    survivors: list[int]


def _read_outcomes(path: Path, n_batches: int) -> list[dict]:
    from ..course import intake

    raw: list = []
    try:
        blob = intake.read_submitted_file(path, path.parent, MAX_OUTPUT_BYTES)
        raw = torch.load(io.BytesIO(blob), weights_only=True).get("results", [])
    except Exception:  # no file, a link, too large, not a torch file: nothing came back
        raw = []
    out = []
    for k in range(n_batches):
        e = raw[k] if k < len(raw) and isinstance(raw[k], dict) else {}
        out.append({"status": str(e.get("status", "missing")), "value": e.get("value"),
                    "error": str(e.get("error", ""))[:1500]})
    return out


def run_notebook(ch: Challenge, cells: list[str], raw: bytes, filename: str, payload: dict,
                 n_batches: int) -> SandboxRun:
    """Run the submission's cells, then the attack on every batch, in a fresh sandboxed kernel
    (:mod:`advlab.course.engine`); every process it started is gone before anything is read."""
    from ..course.engine import CellLog
    from ..course.kernel_session import cell_problems, notebook_session, replay, send_inputs

    limits = limits_of(ch)
    with notebook_session(limits, raw, filename, "advlab-challenge-", kernel.PREAMBLE,
                          cells) as (scratch, run):
        problems = cell_problems(run.logs)
        if not run.alive():  # the time limit was reached: one fresh replay for the attack
            replay(run, kernel.PREAMBLE, cells, limits)
        in_path, out_path = scratch.inbox / "challenge_in.pt", scratch.io / "challenge_out.pt"
        send_inputs(payload, in_path)
        if run.alive():
            src = kernel.run_source(ch.attack.function, str(in_path), str(out_path),
                                    limits.call_timeout)
            log = run.run(src, timeout=limits.call_timeout * n_batches + 30, deadline=False)
        else:
            log = CellLog(-1, "skipped", "the kernel could not be restarted in time")
        if log.status != "ok":
            problems.append(f"the attack cell: {log.status}: {log.detail}"[:400])
        run.close()
        outcomes = _read_outcomes(out_path, n_batches)
        return SandboxRun(outcomes, problems, run.iso.level, list(run.survivors))


# ---------------------------------------------------------------------------------------------
# Grading


@dataclass
class AttackSetup:
    """Everything built once per class: the model (the grader's copy), its architecture, the
    threat, the held-out images and the payload sent to every kernel."""

    model: torch.nn.Module
    arch: str
    threat: object
    x: torch.Tensor
    y: torch.Tensor
    payload: dict

    @property
    def n_batches(self) -> int:
        return len(self.payload["batches"])


def setup(ch: Challenge) -> AttackSetup:
    """Load the model and images once for a whole class."""
    model, arch = attack_model(ch)
    threat = parse_threat(ch.attack.threat)
    x, y = held_out(ch)
    bs = ch.attack.batch_size
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    batches = [(x[i:i + bs], y[i:i + bs]) for i in range(0, x.shape[0], bs)]
    payload = {"arch": arch, "state": state, "threat": threat_payload(threat), "batches": batches}
    return AttackSetup(model, arch, threat, x, y, payload)


def entry_from(student: str, rc: Recheck, threat, notes: list[str]) -> Entry:
    """The leaderboard entry and Gradescope tests of one re-checked attack."""
    counts = rc.counts()
    bad = {k: v for k, v in counts.items() if k != "valid"}
    metrics = {"accuracy left": 100 * rc.accuracy_left, "clean accuracy": 100 * rc.clean_accuracy,
               "success rate": 100 * rc.success_rate, "valid inputs": f"{rc.n_valid}/{rc.n}"}
    why = "; ".join(f"{v} {REASONS[k]}" for k, v in bad.items())
    out = [f"The model keeps {100 * rc.accuracy_left:.1f}% accuracy on your inputs "
           f"(clean: {100 * rc.clean_accuracy:.1f}%, threat {threat!r}, n = {rc.n})."]
    if bad:
        out.append(f"{rc.n - rc.n_valid} of {rc.n} inputs earned no credit ({why}); the clean "
                   "image was used for each.")
    out += notes[:10]
    tests = [
        test("accuracy left (share of correctly classified images fooled)",
             100 * rc.success_rate, 100.0, "\n".join(out), "1"),
        test("inputs inside the threat model and [0, 1], finite, right shape and dtype",
             float(rc.n_valid), float(rc.n), why or "all valid", "2"),
    ]
    for t in tests[1:]:
        t["max_score"], t["score"] = 0.0, 0.0  # informative only: the score is test 1
        t["output"] = f"{rc.n_valid}/{rc.n} valid. " + (why or "")
    return Entry(student, "attack", score=100 * rc.success_rate, metrics=metrics, ranked=True,
                 tests=tests)


def grade_attack(ch: Challenge, raw: bytes, student: str = "student",
                 filename: str = "attack.ipynb", prepared: AttackSetup | None = None) -> Entry:
    """Grade one attack notebook given as bytes; never raises because of what it contains."""
    from ..course.notebook_cells import read_notebook_cells
    from ..course.provenance import source_flags

    start = time.monotonic()
    prep = prepared or setup(ch)
    sha = hashlib.sha256(raw).hexdigest()
    try:
        cells = read_notebook_cells(raw)
    except ValueError as exc:
        e = not_graded(student, "attack", f"not graded: {exc}")
    else:
        try:
            sb = run_notebook(ch, cells, raw, filename, prep.payload, prep.n_batches)
        except Exception as exc:  # e.g. no kernel could start: report it, grade the others
            e = not_graded(student, "attack", f"the grader could not run this notebook: "
                           f"{type(exc).__name__}: {exc}"[:500])
        else:
            values = [o["value"] if o["status"] == "ok" else None for o in sb.outcomes]
            rc = recheck(prep.model, prep.x, prep.y, prep.threat, values, ch.attack.batch_size)
            notes = [f"batch {k + 1}: {o['status']}: {o['error']}"[:300]
                     for k, o in enumerate(sb.outcomes) if o["status"] != "ok"]
            e = entry_from(student, rc, prep.threat, notes + rc.notes)
            e.problems += sb.problems
            e.isolation = sb.isolation
            e.flags = source_flags(cells, [ch.attack.function])
            if sb.survivors:
                e.flags.append(f"{len(sb.survivors)} processes could not be killed")
    e.sha256, e.seconds = sha, time.monotonic() - start
    e.evaluation = f"re-checked by the grader's forward pass, threat {prep.threat!r}, n = {ch.n}"
    return e


def not_graded(student: str, track: str, reason: str) -> Entry:
    """An entry with score 0 that is not ranked, and the reason."""
    t = test("graded", 0.0, 100.0, reason, "1")
    return Entry(student, track, 0.0, metrics={}, ranked=False, tests=[t], problems=[reason])
