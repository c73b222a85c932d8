"""Grade submitted notebooks: one fresh sandboxed kernel each, judged by the grader's own checks.

:func:`grade_folder` reads every submission up front (so a submission that writes over its
neighbours changes nothing), grades each with :func:`grade_submission` (optionally in
parallel) and writes, per student, a Gradescope-format ``results.json`` and, for the class,
``summary.csv``. Inside the kernel only the student's code runs; the inputs come from the
grader, and the returned values are compared with reference answers in this process.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import codec, intake, isolation
from .engine import CellLog, KernelRun, Limits, run_cells
from .harness import PREAMBLE, harvest_source
from .intake import Submission
from .provenance import source_flags
from .registry import get_exercise
from .spec import CaseResult, Exercise, Outcome, Question, score_case

MAX_OUTPUT_FILE = 200 * 2**20
SKIP_TAG = "skip-grading"
STATUSES = ("ok", "error", "timeout", "missing")


class GradingError(Exception):
    """A problem with the grader's inputs (not with a submission): a missing folder, say."""


@dataclass
class TestResult:
    """One graded case, in Gradescope's per-test shape."""

    name: str
    number: str
    score: float
    max_score: float
    status: str
    output: str
    visibility: str

    def as_json(self) -> dict:
        """The Gradescope test dict."""
        return asdict(self)


@dataclass
class SubmissionResult:
    """The grade of one submission."""

    student: str
    exercise: str
    score: float
    max_score: float
    tests: list[TestResult] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0
    sha256: str = ""
    problems: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    isolation: str = ""

    def question_scores(self) -> dict[str, float]:
        """Points per question id."""
        scores: dict[str, float] = {}
        for t in self.tests:
            qid = t.name.split(":", 1)[0]
            scores[qid] = scores.get(qid, 0.0) + t.score
        return scores

    def as_gradescope(self) -> dict:
        """The Gradescope ``results.json`` object."""
        return {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": round(self.seconds, 1),
            "output": self.output,
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [t.as_json() for t in self.tests],
            "extra_data": {
                "advlab_version": advlab_version(),
                "grader_sha256": grader_hash(),
                "submission_sha256": self.sha256,
                "flags": self.flags,
                "isolation": self.isolation,
            },
        }


# ---------------------------------------------------------------------------------------------
# One submission


@functools.lru_cache(maxsize=1)
def grader_hash() -> str:
    """SHA-256 over the grader's own source files: equal hashes grade identically."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def advlab_version() -> str:
    """The installed advlab version (or 'source' when run from a checkout)."""
    try:
        from importlib.metadata import version

        return version("advlab")
    except Exception:
        return "source"


def case_payloads(question: Question) -> list[list[dict]]:
    """The plain-data inputs of every call of every case of ``question``."""
    return [
        [codec.encode({"args": c.args, "kwargs": c.kwargs}) for c in case.calls]
        for case in question.cases()
    ]


def harvest_timeout(question: Question, limits: Limits) -> float:
    """Time allowed for one question's harvest cell."""
    calls = sum(len(c.calls) for c in question.cases())
    return limits.call_timeout * calls + 15.0


def read_notebook_cells(raw: bytes) -> list[str]:
    """The code cells' sources, without cells tagged ``skip-grading``.

    Raises ValueError with a readable reason for a file that is not a notebook.
    """
    import nbformat

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is not UTF-8 text ({exc})") from None
    try:
        with warnings.catch_warnings():  # e.g. cells without ids: harmless for grading
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as exc:
        raise ValueError(f"the file is not a valid notebook: {str(exc)[:300]}") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError("the notebook has no list of cells")
    sources = []
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell, dict) else []
        if isinstance(tags, list) and SKIP_TAG in tags:
            continue  # an ungraded, slow exploration cell (e.g. training three models)
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            sources.append("".join(src) if isinstance(src, list) else str(src))
    return sources


def _load_outcomes(path: Path, n_cases: int) -> tuple[list[list[Outcome]], list[str]]:
    """Outcomes per case from the kernel's output file (cases without a result stay empty),
    and the kernel's provenance flags."""
    raw: list = []
    flags: list[str] = []
    try:
        blob = intake.read_submitted_file(path, path.parent, MAX_OUTPUT_FILE)
        data = torch.load(io.BytesIO(blob), weights_only=True)
        raw = data.get("results", [])
        flags = [str(f)[:300] for f in data.get("flags", [])][:5]
    except Exception:  # no file, a link, too large, not a torch file: no results
        raw = []
    cases: list[list[Outcome]] = []
    for i in range(n_cases):
        entries = raw[i] if i < len(raw) and isinstance(raw[i], list) else []
        cases.append([_to_outcome(e) for e in entries])
    return cases, flags


def _to_outcome(entry) -> Outcome:
    if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
        return Outcome("error", error="the kernel returned a malformed result")
    after = entry.get("after") if isinstance(entry.get("after"), dict) else {}
    return Outcome(entry["status"], entry.get("value"), after, str(entry.get("error", ""))[:2000])


def _missing_result(log: CellLog) -> Outcome:
    """The outcome for a case the kernel never reported (it hung or died on an earlier call)."""
    if log.status == "timeout":
        return Outcome("timeout")
    why = {
        "dead": "killed the kernel (os._exit, a crash or too much memory)",
        "skipped": "could not run: the submission's time limit was reached",
    }
    return Outcome("error", error=why.get(log.status, f"stopped the kernel ({log.detail})"))


def _score_question(question, outcomes, log, limits, q_number) -> list[TestResult]:
    note = f"within {limits.call_timeout:g} s"
    tests = []
    for j, (case, outs) in enumerate(zip(question.cases(), outcomes, strict=True), start=1):
        if len(outs) < len(case.calls) and not any(o.status == "missing" for o in outs):
            outs = outs + [_missing_result(log)]
        res = score_case(case, outs, question.func, note)
        tests.append(_test_result(question, case, res, f"{q_number}.{j}"))
    return tests


def _test_result(question: Question, case, res: CaseResult, number: str) -> TestResult:
    status = "passed" if res.passed else "failed"
    lines = [] if res.passed else [f"input: {case.describe}", res.message, f"hint: {question.hint}"]
    return TestResult(
        name=f"{question.qid}: {case.name}",
        number=number,
        score=float(res.points),
        max_score=float(res.max_points),
        status=status,
        output="\n".join(line for line in lines if line),
        visibility="after_published" if case.hidden else "visible",
    )


def _zero_result(exercise: Exercise, student: str, reason: str, limits: Limits):
    tests = []
    for qi, q in enumerate(exercise.questions, start=1):
        for j, case in enumerate(q.cases(), start=1):
            res = CaseResult(case.name, 0.0, case.points, False, reason, case.hidden)
            tests.append(_test_result(q, case, res, f"{qi}.{j}"))
    return tests


def _cell_report(logs: list[CellLog]) -> list[str]:
    lines = []
    for log in logs:
        if log.status in ("error", "timeout", "dead", "skipped"):
            lines.append(f"code cell {log.index + 1}: {log.status}: {log.detail}"[:400])
    return lines


def grade_submission(
    exercise: Exercise | str,
    raw: bytes,
    student: str = "student",
    limits: Limits | None = None,
    filename: str = "submission.ipynb",
) -> SubmissionResult:
    """Grade one notebook given as bytes; never raises because of what the notebook contains."""
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    limits = limits or Limits()
    start = time.monotonic()
    result = SubmissionResult(
        student, exercise.name, 0.0, exercise.max_points, sha256=hashlib.sha256(raw).hexdigest()
    )
    try:
        cells = read_notebook_cells(raw)
    except ValueError as exc:
        result.problems.append(str(exc))
        result.tests = _zero_result(exercise, student, f"not graded: {exc}", limits)
    else:
        result.flags = static_flags(cells, [q.func for q in exercise.questions])
        result.isolation = isolation.detect().level
        try:
            result.tests, logs, kernel_flags, iso, left = _grade_cells(
                exercise, cells, raw, limits, filename
            )
            result.problems.extend(_cell_report(logs))
            result.flags += [f for f in kernel_flags if f not in result.flags]
            result.isolation = iso.level
            if left:
                msg = f"{len(left)} processes of this submission could not be killed: {left[:5]}"
                result.problems.append(msg)
                result.flags.append(msg)
        except Exception as exc:  # e.g. no kernel could start: report it, grade the others
            reason = f"the grader could not run this notebook: {type(exc).__name__}: {exc}"
            result.problems.append(reason[:500])
            result.tests = _zero_result(exercise, student, reason[:500], limits)
    result.score = round(sum(t.score for t in result.tests), 6)
    result.seconds = time.monotonic() - start
    result.output = _summary_text(result)
    return result


def _grade_cells(exercise, cells, raw, limits, filename):
    """Run the notebook and the harvests, end every process, then read and score the outputs.

    Returns (tests, cell logs, kernel flags, the isolation level, processes that survived).
    """
    scratch = isolation.Scratch(Path(tempfile.mkdtemp(prefix="advlab-grade-")))
    run = KernelRun(scratch, limits)
    try:
        nb_path = scratch.work / Path(filename).name
        nb_path.write_bytes(raw)
        if run.uid is not None:
            os.chown(nb_path, run.uid, run.uid)
        run_cells(run, PREAMBLE, cells)
        logs = list(run.logs)
        harvests = []
        replays = 2
        for qi, question in enumerate(exercise.questions, start=1):
            if not run.alive() and replays > 0:
                replays -= 1
                run.deadline = time.monotonic() + limits.submission_timeout
                run_cells(run, PREAMBLE, cells)
            harvests.append(_harvest_question(run, question, qi, scratch, limits))
        run.close()  # every process of the submission is gone before anything is read
        tests: list[TestResult] = []
        flags: list[str] = []
        for qi, (question, (out_path, log)) in enumerate(
            zip(exercise.questions, harvests, strict=True), start=1
        ):
            outcomes, q_flags = _load_outcomes(out_path, len(question.cases()))
            tests += _score_question(question, outcomes, log, limits, qi)
            flags += [f for f in q_flags if f not in flags]
        return tests, logs, flags, run.iso, list(run.survivors)
    finally:
        run.close()
        shutil.rmtree(scratch.root, ignore_errors=True)


def _harvest_question(run: KernelRun, question: Question, qi: int, scratch, limits):
    """Run the harvest cell of one question; returns (output file, the cell's log)."""
    in_path, out_path = scratch.inbox / f"in_{qi}.pt", scratch.io / f"out_{qi}.pt"
    torch.save({"cases": case_payloads(question)}, in_path)  # the kernel cannot write inbox/
    os.chmod(in_path, 0o644)
    if out_path.is_symlink() or out_path.exists():
        out_path.unlink()  # the kernel owns io/: whatever it left there is not a result
    if run.alive():
        src = harvest_source(question.func, str(in_path), str(out_path), limits.call_timeout)
        log = run.run(src, timeout=harvest_timeout(question, limits), deadline=False)
    else:
        log = CellLog(-1, "skipped", "the kernel could not be restarted in time")
    return out_path, log


def static_flags(cells: list[str], funcs: list[str] | None = None) -> list[str]:
    """Flags from the submission's source alone (see :mod:`advlab.course.provenance`)."""
    return source_flags(cells, funcs or [])


def _summary_text(result: SubmissionResult) -> str:
    lines = [f"{result.exercise}: {result.score:g}/{result.max_score:g} points"]
    for qid, pts in result.question_scores().items():
        lines.append(f"  {qid}: {pts:g}")
    if result.problems:
        lines.append("While running your notebook:")
        lines += [f"  {p}" for p in result.problems[:20]]
    if result.flags:
        lines.append("Flagged for review by your instructor:")
        lines += [f"  {f}" for f in result.flags]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# A class


def find_submissions(folder: Path, exercise: Exercise) -> list[Submission]:
    """Every submission in ``folder``, read up front, under unique names (see :mod:`.intake`)."""
    try:
        found = intake.find_submissions(Path(folder), exercise.notebook)
    except FileNotFoundError as exc:
        raise GradingError(str(exc)) from None
    if not found:
        raise GradingError(
            f"no submissions in {str(folder)!r}: put one NAME.ipynb per student there, or one "
            f"folder per student containing {exercise.notebook}"
        )
    return found


def _not_graded(exercise: Exercise, student: str, problem: str, limits) -> SubmissionResult:
    res = SubmissionResult(student, exercise.name, 0.0, exercise.max_points)
    res.problems.append(problem)
    res.tests = _zero_result(exercise, student, f"not graded: {problem}", limits)
    res.output = _summary_text(res)
    return res


def grade_folder(
    exercise: Exercise | str,
    folder: Path,
    out_dir: Path | None = None,
    limits: Limits | None = None,
    jobs: int = 1,
    progress=None,
) -> list[SubmissionResult]:
    """Grade every submission in ``folder``; write results under ``out_dir`` if given.

    Results are written only after every submission's processes are gone (each kernel's
    sandbox is torn down and checked empty inside :func:`grade_submission`).
    """
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    limits = limits or Limits()
    iso = isolation.detect()
    if iso.weak:  # said at the start of the run (and in every summary row), never silently
        warnings.warn(f"advlab grade: {iso.banner()}", RuntimeWarning, stacklevel=2)
    subs = find_submissions(Path(folder), exercise)
    for q in exercise.questions:  # build inputs and references before any submission runs
        q.cases()

    def one(sub: Submission) -> SubmissionResult:
        if sub.raw is None:
            res = _not_graded(exercise, sub.student, sub.problem, limits)
        else:
            res = grade_submission(exercise, sub.raw, sub.student, limits, sub.path.name)
        if sub.clash:
            res.problems.insert(0, sub.clash)
            res.output = _summary_text(res)
        if progress:
            progress(res)
        return res

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, subs))
    if out_dir is not None:
        write_results(results, Path(out_dir), exercise)
    return results


def write_results(results: list[SubmissionResult], out_dir: Path, exercise: Exercise) -> None:
    """``OUT/<student>/results.json`` (Gradescope format) and ``OUT/summary.csv``."""
    names = [r.student.casefold() for r in results]
    dups = sorted({n for n in names if names.count(n) > 1} | (set(names) & intake.RESERVED))
    if dups:  # find_submissions makes names unique: this is a bug, never an overwrite
        raise GradingError(f"student names are not unique ({', '.join(dups)}); nothing written")
    out_dir.mkdir(parents=True, exist_ok=True)
    for res in results:
        d = out_dir / res.student
        if d.is_symlink():
            d.unlink()
        d.mkdir(parents=True, exist_ok=True)
        _write_new(d / "results.json", json.dumps(res.as_gradescope(), indent=2) + "\n")
    write_summary_csv(results, out_dir / "summary.csv", exercise)


def _isolation_note(level: str) -> str:
    """The summary's isolation column: the level, with a warning when it is the weak one."""
    if level == "none":
        return "none (WEAK: no namespaces, the grader's user; see docs/grading.md)"
    return level


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` to a fresh file at ``path`` (an existing file or link there is replaced)."""
    if path.is_symlink() or path.exists():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def write_summary_csv(results: list[SubmissionResult], path: Path, exercise: Exercise) -> None:
    """One row per student: total, percent, points per question, problems, flags, time, hash."""
    qids = [q.qid for q in exercise.questions]
    if path.is_symlink():
        path.unlink()
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "student",
                "score",
                "max_score",
                "percent",
                *qids,
                "problems",
                "flags",
                "seconds",
                "sha256",
                "isolation",
            ]
        )
        for r in results:
            per = r.question_scores()
            pct = 100.0 * r.score / r.max_score if r.max_score else 0.0
            w.writerow(
                [
                    r.student,
                    f"{r.score:g}",
                    f"{r.max_score:g}",
                    f"{pct:.1f}",
                    *(f"{per.get(q, 0.0):g}" for q in qids),
                    " | ".join(r.problems),
                    " | ".join(r.flags),
                    f"{r.seconds:.1f}",
                    r.sha256,
                    _isolation_note(r.isolation),
                ]
            )


def grade_gradescope(
    exercise: Exercise | str, folder: Path, results_json: Path, limits: Limits | None = None
) -> SubmissionResult:
    """Gradescope mode: ``folder`` holds one student's files; write ``results_json``."""
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    folder = Path(folder)
    if not folder.exists():
        raise GradingError(f"submission folder {str(folder)!r} does not exist")
    root = Path(os.path.realpath(folder))
    path, why = (root, "") if root.is_file() else intake.notebook_in(root, exercise.notebook)
    if path is None and why.startswith("no notebook"):
        why = f"no notebook found: please submit {exercise.notebook}"
    elif path is not None:
        try:
            raw = intake.read_submitted_file(path, root if root.is_dir() else root.parent)
        except intake.RefusedFile as exc:
            path, why = None, f"refused: {exc}"
    if path is None:
        res = _not_graded(exercise, "student", why, limits)
    else:
        res = grade_submission(exercise, raw, "student", limits, path.name)
    results_json = Path(results_json)
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(res.as_gradescope(), indent=2) + "\n")
    return res
