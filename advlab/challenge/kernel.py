"""Kernel side of the attack track: call the student's attack on each batch, save what it returned.

The grader runs :data:`PREAMBLE` in the submission's fresh sandboxed kernel before any student
cell, then, after the cells, one call of :meth:`Runner.run`. Nothing here is trusted: whatever
this module saves is only a candidate ``x_adv`` per batch, which the grader re-checks in its own
process (threat model, box, finite values, shape, dtype) and classifies with its own copy of the
model. A notebook that patches this module can only change its own candidates.
"""

from __future__ import annotations

import copy
import os
import signal

import torch

STASH = "__advlab_challenge__"

PREAMBLE = f"""\
import sys as _advlab_sys
import advlab.challenge.kernel as _advlab_challenge_kernel
_advlab_sys.modules[{STASH!r}] = _advlab_challenge_kernel.Runner()
del _advlab_sys, _advlab_challenge_kernel
"""


def run_source(func: str, in_path: str, out_path: str, call_timeout: float) -> str:
    """Source of the cell that runs the student's ``func`` on every batch."""
    return (f"__import__('sys').modules[{STASH!r}].run("
            f"globals(), {func!r}, {in_path!r}, {out_path!r}, {float(call_timeout)!r})")


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def build_model(arch: str, state: dict) -> torch.nn.Module:
    """The attacked model, rebuilt from its architecture name and state dict, in eval mode."""
    from ..models import build_model as build

    model = build(arch)
    model.load_state_dict(state)
    return model.eval()


def build_threat(payload: dict):
    """``{"name": "linf", "eps": 0.3}`` -> ``Linf(0.3)``."""
    from .. import threats

    cls = {"linf": threats.Linf, "l2": threats.L2, "l1": threats.L1}[payload["name"]]
    return cls(float(payload["eps"]))


class Runner:
    """Bound before student code runs: keeps its own references to torch's load and save."""

    def __init__(self):
        from ..course.codec import encode_output
        from ..course.harness import error_text

        self._load, self._save = torch.load, torch.save
        self._encode, self._error_text = encode_output, error_text

    def _call(self, fn, model, x, y, threat, timeout: float) -> dict:
        old = signal.signal(signal.SIGALRM, _on_alarm) if os.name == "posix" else None
        if old is not None:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            value = fn(model, x, y, threat)
            status, error = "ok", ""
        except _Timeout:
            value, status, error = None, "timeout", f"ran longer than {timeout:g} s"
        except BaseException as exc:  # anything, SystemExit included
            value, status, error = None, "error", self._error_text(exc)
        finally:
            if old is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        if status == "ok" and hasattr(value, "x_adv"):  # an advlab AttackResult
            value = value.x_adv
        out = {"status": status, "value": None, "error": error}
        if status == "ok":
            try:
                out["value"] = self._encode(value)
            except Exception as exc:
                out.update(status="error", error=f"could not record the returned value: {exc}")
        return out

    def run(self, namespace: dict, func: str, in_path: str, out_path: str, timeout: float):
        """Call ``namespace[func](model, x, y, threat)`` per batch; save after every batch."""
        payload = self._load(in_path, weights_only=True)
        fn = namespace.get(func)
        base = build_model(payload["arch"], payload["state"])
        threat = build_threat(payload["threat"])
        results: list[dict] = []
        for x, y in payload["batches"]:
            if not callable(fn):
                results.append({"status": "missing", "value": None,
                                "error": f"the notebook defines no function `{func}`"})
            else:
                torch.set_grad_enabled(True)
                model = copy.deepcopy(base)  # what one call does to its model stays there
                results.append(self._call(fn, model, x.clone(), y.clone(), threat, timeout))
            self._save({"results": results}, out_path)
