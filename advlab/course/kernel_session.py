"""A submitted notebook in a fresh sandboxed kernel: the set-up and tear-down that the course
grader (:mod:`advlab.course.submission_grading`) and the challenge's attack track share.

    with notebook_session(limits, raw, "ex1.ipynb", "advlab-grade-", PREAMBLE, cells) as (
            scratch, run):
        ...                # run.logs: the notebook's cells; send_inputs, run.run(harvest) ...
        run.close()        # every process is gone before anything is read

The notebook's bytes are kept as ``scratch.work/<filename>`` (the kernel's user owns them), the
preamble and the code cells have run when the block starts, and on leaving it every process is
ended and the scratch folder removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from . import isolation
from .engine import CellLog, KernelRun, Limits, run_cells

__all__ = ["cell_problems", "notebook_session", "replay", "send_inputs"]


@contextmanager
def notebook_session(limits: Limits, raw: bytes, filename: str, prefix: str, preamble: str,
                     cells: list[str]) -> Iterator[tuple[isolation.Scratch, KernelRun]]:
    """(scratch folders, kernel run) after ``preamble`` and ``cells`` ran (see the module)."""
    scratch = isolation.Scratch(Path(tempfile.mkdtemp(prefix=prefix)))
    run = KernelRun(scratch, limits)
    try:
        nb_path = scratch.work / Path(filename).name
        nb_path.write_bytes(raw)
        if run.uid is not None:
            os.chown(nb_path, run.uid, run.uid)
        run_cells(run, preamble, cells)
        yield scratch, run
    finally:
        run.close()
        shutil.rmtree(scratch.root, ignore_errors=True)


def replay(run: KernelRun, preamble: str, cells: list[str], limits: Limits) -> None:
    """Run the notebook again (in a fresh kernel) with a fresh submission time budget."""
    run.deadline = time.monotonic() + limits.submission_timeout
    run_cells(run, preamble, cells)


def send_inputs(payload: dict, path: Path) -> None:
    """Save ``payload`` where the kernel may read but not write it (``scratch.inbox``)."""
    torch.save(payload, path)  # the kernel cannot write inbox/
    os.chmod(path, 0o644)


def cell_problems(logs: list[CellLog]) -> list[str]:
    """One line per cell that failed, timed out, killed the kernel or was skipped."""
    return [f"code cell {g.index + 1}: {g.status}: {g.detail}"[:400] for g in logs
            if g.status in ("error", "timeout", "dead", "skipped")]
