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
import types
from types import SimpleNamespace
from typing import Any

import torch

from . import codec

STASH = "__advlab_harness__"
GRADERS = "advlab.course.graders"

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


def run_call(fn: Any, call_payload: dict, timeout: float | None = None, tools=None) -> dict:
    """Call ``fn`` on decoded inputs; return a plain dict outcome (status, value, after, error).

    ``tools`` (see :func:`bind_tools`) are the functions captured before any student code ran;
    by default the module's current ones (fine outside grading, e.g. for ``check``).
    """
    t = tools or bind_tools()
    args, models = t.decode((call_payload["args"], call_payload["kwargs"]))
    pos, kw = args
    t.set_grad_enabled(True)
    old = t.arm(timeout)
    try:
        value = fn(*pos, **kw)
        status, error = "ok", ""
    except CallTimeout:
        value, status, error = None, "timeout", ""
    except BaseException as exc:  # the student's code may raise anything, SystemExit included
        value, status, error = None, "error", t.error_text(exc)
    finally:
        t.disarm(old)
    out = {"status": status, "value": None, "after": {}, "error": error}
    if status == "ok":
        try:
            out["value"] = t.encode_output(value)
            out["after"] = t.model_states(models)
        except Exception as exc:
            out.update(status="error", error=f"could not record the returned value: {exc}")
    return out


def bind_tools() -> SimpleNamespace:
    """The functions harvesting calls, bound now: replacing ``codec.encode_output``,
    ``torch.save`` or this module's globals later does not change the bound ones (this
    module's functions are copies that look their globals up in a snapshot taken now)."""
    snapshot = dict(globals())

    def frozen(fn):
        return types.FunctionType(fn.__code__, snapshot, fn.__name__, fn.__defaults__)

    for name in ("run_call", "_arm", "_disarm", "_raise_timeout", "error_text",
                 "provenance_flags", "_is_cell_file"):
        snapshot[name] = frozen(snapshot[name])
    return SimpleNamespace(
        decode=codec.decode,
        encode_output=codec.encode_output,
        model_states=codec.model_states,
        set_grad_enabled=torch.set_grad_enabled,
        run_call=snapshot["run_call"],
        arm=snapshot["_arm"],
        disarm=snapshot["_disarm"],
        error_text=snapshot["error_text"],
        save=torch.save,
        load=torch.load,
        provenance=snapshot["provenance_flags"],
        flush=sys.stdout.flush,
    )


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
    """Bound at kernel start, before any student code: the tools it uses are captured then,
    and an audit hook (which Python cannot remove) records every import and every opened file
    of the grader's reference answers, even if the module is later deleted from
    ``sys.modules``."""

    def __init__(self):
        self._tools = bind_tools()
        self._seen: list[str] = []
        sys.addaudithook(_grader_access_hook(self._seen))

    def harvest(
        self, namespace: dict, func: str, in_path: str, out_path: str, call_timeout: float
    ) -> None:
        """Run every case of one question; results are saved after each case."""
        t = self._tools
        payload = t.load(in_path, weights_only=True)
        fn = namespace.get(func)
        flags = t.provenance(fn, func, self._seen) if callable(fn) else []
        results: list[list[dict]] = []
        for case in payload["cases"]:
            if not callable(fn):
                outs = [{"status": "missing", "value": None, "after": {}, "error": ""}]
            else:
                outs = [t.run_call(fn, call, call_timeout, t) for call in case]
            results.append(outs)
            t.save({"results": results, "flags": flags}, out_path)
        t.flush()


def _grader_access_hook(seen: list[str]):
    """An audit hook recording imports and opens of ``advlab.course.graders`` into ``seen``."""
    prefix, folder = GRADERS + ".", f"{os.sep}advlab{os.sep}course{os.sep}graders{os.sep}"

    def hook(event: str, args: tuple, fspath=os.fspath, sep=os.sep, str_=str) -> None:
        if event == "import" and args and isinstance(args[0], str_):
            name = args[0]
            if (name == GRADERS or name.startswith(prefix)) and name not in seen:
                seen.append(name)
        elif event == "open" and args and not isinstance(args[0], int):
            try:
                path = fspath(args[0])
            except TypeError:
                return
            if isinstance(path, bytes):
                path = path.decode(errors="replace")
            if folder in path:
                name = GRADERS + "." + path.rsplit(sep, 1)[-1].split(".")[0]
                if name not in seen:
                    seen.append(name)

    return hook


def _is_cell_file(filename: str) -> bool:
    return filename.startswith("<ipython-input") or "ipykernel_" in filename


def provenance_flags(fn, func: str, seen: list[str] | None = None) -> list[str]:
    """Signs that ``fn`` is not the student's own code, for the instructor to review.

    Flags, not verdicts: a function not defined in a notebook cell (imported, a partial, a
    builtin), or grader modules (which hold the reference answers) imported or read in the
    kernel (``seen``, from the audit hook; else what ``sys.modules`` holds now). The grader
    adds its own flags from the notebook's source (:mod:`advlab.course.provenance`).
    """
    flags = []
    code = getattr(fn, "__code__", None)
    if code is None or not _is_cell_file(code.co_filename):
        where = getattr(code, "co_filename", None) or type(fn).__name__
        flags.append(f"`{func}` is not defined in a notebook cell (it comes from {where})")
    graders = set(seen or []) | {m for m in sys.modules if m.startswith(GRADERS)}
    if graders:
        flags.append(
            "the notebook imported the grader's reference answers: " + ", ".join(sorted(graders))
        )
    return flags
