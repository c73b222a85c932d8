"""Kernel side of grading: call the student's function on the grader's inputs, save the outputs.

The grader runs :data:`PREAMBLE` in a fresh kernel before the submission's cells; it binds
everything the harness needs and stashes it in ``sys.modules`` so that later cells that
monkeypatch ``torch``, ``advlab`` or the check functions cannot change how outputs are recorded.
After the submission's cells, the grader runs one harvest cell per question
(:func:`harvest_source`). Nothing is judged here: the kernel only reports what the student's
function returned, and the grader process compares that with its own reference answers.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any

import torch

from . import codec

STASH = "__advlab_harness__"

PREAMBLE = f"""\
import sys as _advlab_sys
import advlab.course.harness as _advlab_harness_module
_advlab_sys.modules[{STASH!r}] = _advlab_harness_module.Harvester()
del _advlab_sys, _advlab_harness_module
"""


def harvest_source(func: str, in_path: str, out_path: str, call_timeout: float) -> str:
    """Source of the cell that harvests ``func``'s outputs for one question."""
    return (
        f"__import__('sys').modules[{STASH!r}].harvest("
        f"globals(), {func!r}, {in_path!r}, {out_path!r}, {float(call_timeout)!r})"
    )


class CallTimeout(BaseException):
    """Raised inside the student's function when a call runs past its time limit."""


def error_text(exc: BaseException) -> str:
    """``Type: message`` plus the line of the student's code where it happened, if any."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        if fr.filename.startswith("<ipython-input") or "ipykernel_" in fr.filename:
            text += f" (in your code, line {fr.lineno}: {(fr.line or '').strip()[:120]})"
            break
    return text[:1500]


def run_call(fn: Any, call_payload: dict, timeout: float | None = None) -> dict:
    """Call ``fn`` on decoded inputs; return a plain dict outcome (status, value, after, error)."""
    args, models = codec.decode((call_payload["args"], call_payload["kwargs"]))
    pos, kw = args
    torch.set_grad_enabled(True)
    old = _arm(timeout)
    try:
        value = fn(*pos, **kw)
        status, error = "ok", ""
    except CallTimeout:
        value, status, error = None, "timeout", ""
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        value, status, error = None, "error", error_text(exc)
    finally:
        _disarm(old)
    out = {"status": status, "value": None, "after": {}, "error": error}
    if status == "ok":
        try:
            out["value"] = codec.encode_output(value)
            out["after"] = codec.model_states(models)
        except Exception as exc:
            out.update(status="error", error=f"could not record the returned value: {exc}")
    return out


def _raise_timeout(signum, frame):
    raise CallTimeout()


def _arm(timeout: float | None):
    if not timeout or os.name != "posix":
        return None
    old = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    return old


def _disarm(old) -> None:
    if old is None:
        return
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


class Harvester:
    """Bound at kernel start; writes each case's outcomes to the grader's output file."""

    def __init__(self):
        self._save = torch.save
        self._load = torch.load
        self._run_call = run_call

    def harvest(
        self, namespace: dict, func: str, in_path: str, out_path: str, call_timeout: float
    ) -> None:
        """Run every case of one question; results are saved after each case."""
        payload = self._load(in_path, weights_only=True)
        fn = namespace.get(func)
        flags = provenance_flags(fn, func) if callable(fn) else []
        results: list[list[dict]] = []
        for case in payload["cases"]:
            if not callable(fn):
                outs = [{"status": "missing", "value": None, "after": {}, "error": ""}]
            else:
                outs = [self._run_call(fn, call, call_timeout) for call in case]
            results.append(outs)
            self._save({"results": results, "flags": flags}, out_path)
        sys.stdout.flush()


def _is_cell_file(filename: str) -> bool:
    return filename.startswith("<ipython-input") or "ipykernel_" in filename


def provenance_flags(fn, func: str) -> list[str]:
    """Signs that ``fn`` is not the student's own code, for the instructor to review.

    Flags, not verdicts: a function not defined in a notebook cell (imported, a partial, a
    builtin), or grader modules (which hold the reference answers) imported in the kernel.
    """
    flags = []
    code = getattr(fn, "__code__", None)
    if code is None or not _is_cell_file(code.co_filename):
        where = getattr(code, "co_filename", None) or type(fn).__name__
        flags.append(f"`{func}` is not defined in a notebook cell (it comes from {where})")
    graders = sorted(m for m in sys.modules if m.startswith("advlab.course.graders"))
    if graders:
        flags.append("the notebook imported the grader's reference answers: " + ", ".join(graders))
    return flags
