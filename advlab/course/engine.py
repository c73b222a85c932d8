"""Run a submission's code cells in a fresh, sandboxed kernel, surviving whatever they do.

One :class:`KernelRun` per submission: a new ``ipykernel`` process (via nbclient and a
kernel manager whose command goes through :mod:`advlab.course.sandbox` for resource limits),
started in a fresh temporary working directory with a minimal environment and a private HOME.
Cells run one by one with a per-cell time limit inside an overall deadline. A cell that times
out or kills the kernel (``os._exit``, a crash) is recorded, the kernel is replaced by a fresh
one and the submission's cells are replayed without the offending cell.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_code_cell, new_notebook
from traitlets import Any, Integer

import advlab

from .. import data as advlab_data
from . import isolation

MAX_OUTPUTS_PER_CELL = 50


@dataclass
class Limits:
    """Time and memory limits for grading one submission."""

    cell_timeout: float = 60.0
    submission_timeout: float = 300.0
    call_timeout: float = 20.0
    memory_mb: int = 2048
    file_mb: int = 256
    startup_timeout: float = 60.0


@dataclass
class CellLog:
    """What happened to one executed cell: ok, error, timeout, dead (kernel died) or skipped."""

    index: int
    status: str
    detail: str = ""


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts through :mod:`advlab.course.sandbox`, inside a
    bubblewrap sandbox when the isolation level allows (see :mod:`advlab.course.isolation`)."""

    memory_mb = Integer(2048)
    file_mb = Integer(256)
    sandbox_uid = Integer(-1)
    isolation = Any(None)
    scratch = Any(None)
    mnist_dir = Any(None)

    def format_kernel_cmd(self, extra_arguments=None):
        """The sandbox launcher command instead of the kernelspec's ``argv``."""
        conn = os.path.realpath(self.connection_file)
        if self.sandbox_uid >= 0:
            os.chown(conn, self.sandbox_uid, self.sandbox_uid)  # 0600, the kernel's only
        cmd = [
            sys.executable,
            "-I",  # run the launcher as a file: importing the advlab package would load torch
            str(Path(__file__).resolve().parent / "sandbox.py"),
            "--memory-mb",
            str(self.memory_mb),
            "--file-mb",
            str(self.file_mb),
        ]
        if self.sandbox_uid >= 0:
            cmd += ["--uid", str(self.sandbox_uid), "--nproc", str(isolation.NPROC)]
        cmd += ["-f", conn]
        iso = self.isolation
        if iso is None or iso.weak:
            return cmd
        return [*isolation.bwrap_command(iso, self.scratch, self.mnist_dir), "--", *cmd]


class _CappedClient(NotebookClient):
    """A notebook client that keeps only a few error outputs per cell.

    The grader needs a cell's errors, never its printed output, so a cell that prints a flood
    (or one huge string) costs the grader no memory.
    """

    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") != "error" or len(outs) >= MAX_OUTPUTS_PER_CELL:
            return None
        content = msg.get("content", {})
        content["traceback"] = [str(line)[:2000] for line in content.get("traceback", [])[-20:]]
        content["evalue"] = str(content.get("evalue", ""))[:2000]
        return super().output(outs, msg, display_id, cell_index)


def kernel_env(scratch: isolation.Scratch, token: str, data: Path | None) -> dict[str, str]:
    """A minimal environment for the kernel: no grader secrets, one thread, a fresh HOME and
    TMPDIR, and the run's token (so that the grader finds every process it started)."""
    root = str(Path(advlab.__file__).resolve().parent.parent)
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    extra = os.environ.get("PYTHONPATH")
    env.update(
        HOME=str(scratch.home),
        TMPDIR=str(scratch.tmp),
        USER="student",
        LOGNAME="student",
        IPYTHONDIR=str(scratch.home / ".ipython"),
        MPLCONFIGDIR=str(scratch.home / ".mpl"),
        MPLBACKEND="Agg",
        PYTHONPATH=root + (os.pathsep + extra if extra else ""),
        PYTHONHASHSEED="0",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
        ADVLAB_GRADING="1",
        JUPYTER_PLATFORM_DIRS="1",
    )
    env[isolation.TOKEN_VAR] = token
    if data is not None:
        env["ADVLAB_DATA"] = str(data)
    return env


@dataclass
class KernelRun:
    """Runs cells for one submission, restarting the kernel when a cell kills or hangs it.

    ``scratch`` holds the submission's folders; ``iso`` is the isolation level (default: the
    strongest this machine allows). :meth:`close` ends every process the submission started.
    """

    scratch: isolation.Scratch
    limits: Limits
    iso: isolation.Isolation | None = None
    deadline: float = 0.0
    logs: list[CellLog] = field(default_factory=list)
    skip: dict[int, CellLog] = field(default_factory=dict)
    survivors: list[int] = field(default_factory=list)
    _client: NotebookClient | None = None
    _count: int = 0

    def __post_init__(self):
        if not self.deadline:
            self.deadline = time.monotonic() + self.limits.submission_timeout
        self.iso = self.iso or isolation.detect()
        self.uid = isolation.allocate_uid(self.iso)
        self.token = secrets.token_hex(16)
        self.scratch.create(self.uid)
        data = advlab_data.data_root().expanduser()
        self.data = data.resolve() if data.is_dir() else None

    @property
    def workdir(self) -> Path:
        """The kernel's working folder."""
        return self.scratch.work

    def remaining(self) -> float:
        """Seconds left before the submission's deadline."""
        return self.deadline - time.monotonic()

    def start(self) -> None:
        """Start a fresh kernel (closing the previous one, if any)."""
        self.close()
        self.scratch.reset_home(self.uid)  # no startup files left by a previous run
        km = SandboxedKernelManager(
            memory_mb=self.limits.memory_mb,
            file_mb=self.limits.file_mb,
            sandbox_uid=-1 if self.uid is None else self.uid,
            isolation=self.iso,
            scratch=self.scratch,
            mnist_dir=self.data,
            transport="ipc",
            ip=str(self.scratch.io / f"kernel-{self._count}"),
            connection_file=str(self.scratch.inbox / f"kernel-{self._count}.json"),
        )
        self._count += 1
        client = _CappedClient(
            new_notebook(),
            km=km,
            allow_errors=True,
            interrupt_on_timeout=False,
            record_timing=False,
            startup_timeout=int(self.limits.startup_timeout),
            resources={"metadata": {"path": str(self.workdir)}},
        )
        log = open(self.scratch.log / "kernel.log", "ab")  # the kernel's own stdout/stderr
        try:
            client.start_new_kernel(
                env=kernel_env(self.scratch, self.token, self.data),
                cwd=str(self.workdir),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        client.start_new_kernel_client()
        self._client = client

    def run(
        self, source: str, timeout: float | None = None, index: int = -1, deadline: bool = True,
        forget: bool = True,
    ) -> CellLog:
        """Execute ``source``; return its status. After 'timeout'/'dead' the kernel is gone.

        With ``deadline`` the cell also stops at the submission's overall deadline. With
        ``forget``, a failed cell's traceback is dropped in the kernel afterwards.
        """
        if self._client is None:
            self.start()
        budget = timeout or self.limits.cell_timeout
        budget = min(budget, self.remaining()) if deadline else budget
        if budget <= 0:
            return CellLog(index, "skipped", "the submission's time limit was reached")
        cell = new_code_cell(source)
        self._client.nb.cells.append(cell)
        self._client.timeout = max(1, int(round(budget)))
        try:
            self._client.execute_cell(cell, len(self._client.nb.cells) - 1, store_history=False)
        except CellTimeoutError:
            self.close()
            return CellLog(index, "timeout", f"ran longer than {budget:.0f} s")
        except DeadKernelError:
            self.close()
            return CellLog(index, "dead", "the kernel died (os._exit, a crash or out of memory)")
        finally:
            self._client and self._client.nb.cells.clear()
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if errors:
            if forget:
                self._forget_traceback()
            return CellLog(index, "error", f"{errors[0].get('ename')}: {errors[0].get('evalue')}")
        return CellLog(index, "ok")

    def _forget_traceback(self) -> None:
        """Drop the traceback IPython keeps after a failed cell, and the frames it holds.

        Otherwise a memory hog's list (a local of the frame that raised MemoryError) stays
        allocated, and the checks that run after it fail for want of memory.
        """
        log = self.run(_FORGET_TRACEBACK, timeout=10, deadline=False, forget=False)
        if log.status in ("timeout", "dead"):
            self.close()

    def alive(self) -> bool:
        """Whether a kernel is running."""
        return self._client is not None

    def close(self) -> None:
        """Shut the kernel down hard and kill every process the submission started: the
        sandbox's pid namespace, its user id, the process group, anything with its token."""
        client, self._client = self._client, None
        pids: set[int] = set()
        if client is not None:
            pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
            if pid:
                pids = {int(pid)} | isolation.descendants(int(pid))
            try:
                if client.kc is not None:
                    client.kc.stop_channels()
            except Exception:
                pass
            try:
                if client.km is not None and client.km.has_kernel:
                    from jupyter_core.utils import run_sync

                    run_sync(client.km.shutdown_kernel)(now=True)
            except Exception:
                pass
        left = isolation.kill_everything(pids, self.uid, self.token)
        self.survivors += [p for p in left if p not in self.survivors]


# Run after a failed cell (its own failure is ignored: the student's code may have broken IPython).
_FORGET_TRACEBACK = """
try:
    import gc as _advlab_gc, sys as _advlab_sys
    for _advlab_name in ("last_type", "last_value", "last_traceback", "last_exc"):
        setattr(_advlab_sys, _advlab_name, None)
    get_ipython().InteractiveTB.tb = None
    get_ipython().last_execution_result = None  # holds the failed cell's exception
    del _advlab_sys, _advlab_name
    _advlab_gc.collect()
    del _advlab_gc
except BaseException:
    pass
"""


def run_cells(run: KernelRun, preamble: str, cells: list[str], max_restarts: int = 4) -> None:
    """Run ``preamble`` then every cell, replaying without a cell that killed/hung the kernel.

    Cell logs go to ``run.logs`` (one entry per submission cell, the final attempt's). The
    kernel is left running for the harvest unless the time limit was reached.
    """
    for _ in range(max_restarts + 1):
        run.start()
        pre = run.run(preamble, timeout=run.limits.startup_timeout, deadline=False)
        if pre.status != "ok":
            raise RuntimeError(f"the grading preamble failed in a fresh kernel: {pre.detail}")
        logs, restart = _run_pass(run, cells, run.skip)
        run.logs = logs
        if not restart:
            return
    run.close()


def _run_pass(run: KernelRun, cells: list[str], skip: dict[int, CellLog]):
    logs: list[CellLog] = []
    for i, src in enumerate(cells):
        if i in skip:
            logs.append(skip[i])
            continue
        log = run.run(src, index=i)
        logs.append(log)
        if log.status in ("timeout", "dead"):
            skip[i] = CellLog(i, "skipped", f"{log.status}: {log.detail}; cell skipped on replay")
            return logs, run.remaining() > 0
    return logs, False
