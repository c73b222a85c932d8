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
import json
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import codec
from .engine import CellLog, KernelRun, Limits, run_cells
from .harness import PREAMBLE, harvest_source
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
    if path.is_file() and path.stat().st_size <= MAX_OUTPUT_FILE:
        try:
            data = torch.load(path, weights_only=True)
            raw = data.get("results", [])
            flags = [str(f)[:300] for f in data.get("flags", [])][:5]
        except Exception:
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
        try:
            result.tests, logs, kernel_flags = _grade_cells(exercise, cells, raw, limits, filename)
            result.problems.extend(_cell_report(logs))
            result.flags = static_flags(cells) + kernel_flags
        except Exception as exc:  # e.g. no kernel could start: report it, grade the others
            reason = f"the grader could not run this notebook: {type(exc).__name__}: {exc}"
            result.problems.append(reason[:500])
            result.tests = _zero_result(exercise, student, reason[:500], limits)
    result.score = round(sum(t.score for t in result.tests), 6)
    result.seconds = time.monotonic() - start
    result.output = _summary_text(result)
    return result


def _grade_cells(exercise, cells, raw, limits, filename):
    tmp = Path(tempfile.mkdtemp(prefix="advlab-grade-"))
    workdir, home, private = tmp / "work", tmp / "home", tmp / "io"
    for d in (workdir, home, private):
        d.mkdir(mode=0o700)
    (workdir / Path(filename).name).write_bytes(raw)
    run = KernelRun(workdir, home, limits, private)
    try:
        run_cells(run, PREAMBLE, cells)
        logs = list(run.logs)
        tests: list[TestResult] = []
        flags: list[str] = []
        replays = 2
        for qi, question in enumerate(exercise.questions, start=1):
            if not run.alive() and replays > 0:
                replays -= 1
                run.deadline = time.monotonic() + limits.submission_timeout
                run_cells(run, PREAMBLE, cells)
            q_tests, q_flags = _harvest_question(run, question, qi, private, limits)
            tests += q_tests
            flags += [f for f in q_flags if f not in flags]
        return tests, logs, flags
    finally:
        run.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _harvest_question(run: KernelRun, question: Question, qi: int, private: Path, limits):
    in_path, out_path = private / f"in_{qi}.pt", private / f"out_{qi}.pt"
    torch.save({"cases": case_payloads(question)}, in_path)
    if run.alive():
        src = harvest_source(question.func, str(in_path), str(out_path), limits.call_timeout)
        log = run.run(src, timeout=harvest_timeout(question, limits), deadline=False)
    else:
        log = CellLog(-1, "skipped", "the kernel could not be restarted in time")
    outcomes, flags = _load_outcomes(out_path, len(question.cases()))
    return _score_question(question, outcomes, log, limits, qi), flags


def static_flags(cells: list[str]) -> list[str]:
    """Flags from the submission's source: it mentions the grader's reference answers."""
    text = "\n".join(cells)
    if "course.graders" in text or "course import graders" in text:
        return ["the source mentions advlab.course.graders (the grader's reference answers)"]
    return []


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


def find_submissions(folder: Path, exercise: Exercise) -> list[tuple[str, Path | None]]:
    """(student, notebook path) pairs: ``NAME.ipynb`` files or ``NAME/`` folders with one."""
    folder = Path(folder)
    if not folder.exists():
        raise GradingError(f"submissions folder {str(folder)!r} does not exist")
    if folder.is_file():
        return [(folder.stem, folder)]
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append((entry.stem, entry))
        elif entry.is_dir():
            found.append((entry.name, _notebook_in(entry, exercise)))
    if not found:
        raise GradingError(
            f"no submissions in {str(folder)!r}: put one NAME.ipynb per student there, or one "
            f"folder per student containing {exercise.notebook}"
        )
    return found


def _notebook_in(folder: Path, exercise: Exercise) -> Path | None:
    preferred = folder / exercise.notebook
    if preferred.is_file():
        return preferred
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return notebooks[0] if notebooks else None


def grade_folder(
    exercise: Exercise | str,
    folder: Path,
    out_dir: Path | None = None,
    limits: Limits | None = None,
    jobs: int = 1,
    progress=None,
) -> list[SubmissionResult]:
    """Grade every submission in ``folder``; write results under ``out_dir`` if given."""
    exercise = get_exercise(exercise) if isinstance(exercise, str) else exercise
    limits = limits or Limits()
    subs = find_submissions(Path(folder), exercise)
    raws = {name: (path.read_bytes() if path else None) for name, path in subs}
    for q in exercise.questions:  # build inputs and references before any submission runs
        q.cases()

    def one(item):
        name, path = item
        raw = raws[name]
        if raw is None:
            res = SubmissionResult(name, exercise.name, 0.0, exercise.max_points)
            res.problems.append("no notebook (.ipynb) found in the student's folder")
            res.tests = _zero_result(exercise, name, "not graded: no notebook found", limits)
            res.output = _summary_text(res)
        else:
            res = grade_submission(exercise, raw, name, limits, path.name)
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
    out_dir.mkdir(parents=True, exist_ok=True)
    for res in results:
        d = out_dir / res.student
        d.mkdir(parents=True, exist_ok=True)
        (d / "results.json").write_text(json.dumps(res.as_gradescope(), indent=2) + "\n")
    write_summary_csv(results, out_dir / "summary.csv", exercise)


def write_summary_csv(results: list[SubmissionResult], path: Path, exercise: Exercise) -> None:
    """One row per student: total, percent, points per question, problems, flags, time, hash."""
    qids = [q.qid for q in exercise.questions]
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
    path = folder if folder.is_file() else _notebook_in(folder, exercise)
    if path is None:
        res = SubmissionResult("student", exercise.name, 0.0, exercise.max_points)
        res.problems.append(f"no notebook found: please submit {exercise.notebook}")
        res.tests = _zero_result(exercise, "student", "not graded: no notebook submitted", limits)
        res.output = _summary_text(res)
    else:
        res = grade_submission(exercise, path.read_bytes(), "student", limits, path.name)
    results_json = Path(results_json)
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(res.as_gradescope(), indent=2) + "\n")
    return res
