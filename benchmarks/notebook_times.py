"""Wall time of each course notebook, run top to bottom in a real kernel (a benchmark, not a test).

    ADVLAB_DATA=... python benchmarks/notebook_times.py                # default mode, all notebooks
    python benchmarks/notebook_times.py --fast notebooks/01_*.ipynb    # fast mode, one notebook
    python benchmarks/notebook_times.py --cells                        # also the slowest cells
    python benchmarks/notebook_times.py --load 0,2                     # idle, then 2 busy processes

The course promises each notebook runs in at most 3 minutes on 2 CPU cores, also on a shared
machine (``--load 2``: two busy background processes, a load of about 4 with the kernel's two
threads), and all of them in at most 20; the script reports both limits and exits 1 when one is
broken. ``--load K1,K2,...`` runs every notebook once per load and prints them side by side.
Results are written as JSON (``--out``, default ``runs/notebook_times.json``) with the machine
and the load averages they were measured under; other work already running on the machine adds
to the load, so the report keeps the load average at the start of each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PER_NOTEBOOK_S = 180
TOTAL_S = 1200


def _cpu_seconds(pid) -> float | None:
    """User + system CPU seconds of process ``pid`` and its waited-for children (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None
    ticks = sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return round(ticks / os.sysconf("SC_CLK_TCK"), 1)


@contextlib.contextmanager
def busy_processes(k: int):
    """``k`` background processes that each keep one core busy (a pure-Python spin), stopped on
    exit: the load of a shared machine. They inherit this process's niceness."""
    if k < 0:
        raise ValueError(f"--load must be >= 0 busy processes, got {k}")
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def _loads(text: str) -> list[int]:
    try:
        loads = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--load takes busy-process counts separated by commas, e.g. 0,2; got {text!r}"
        ) from None
    if not loads or min(loads) < 0:
        raise argparse.ArgumentTypeError(f"--load needs counts >= 0, e.g. 0,2; got {text!r}")
    return loads


def run_notebook(path: Path, fast: bool, timeout: int = 900, save: Path | None = None) -> dict:
    """Execute ``path`` in a fresh python3 kernel; wall time in total and per code cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env_fast = os.environ.get("ADVLAB_FAST")
    os.environ["ADVLAB_FAST"] = "1" if fast else "0"
    cells: list[tuple[int, float, str]] = []
    cpu = {}  # the kernel's own CPU time after each cell: what the notebook costs, load aside

    class Timed(NotebookClient):
        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            finally:
                if cell.cell_type == "code":
                    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                    cells.append((cell_index, time.perf_counter() - t0, first[:60]))
                    provisioner = getattr(self.km, "provisioner", None)
                    cpu["seconds"] = _cpu_seconds(getattr(provisioner, "pid", None))

    client = Timed(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as err:  # a failing notebook is reported, not hidden
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    finally:
        if env_fast is None:
            os.environ.pop("ADVLAB_FAST", None)
        else:
            os.environ["ADVLAB_FAST"] = env_fast
    wall = time.perf_counter() - t0
    if save is not None:  # the executed notebook, outputs and all, to look at
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / path.name)
    return {"notebook": path.name, "seconds": round(wall, 1), "error": error,
            "kernel_cpu_seconds": cpu.get("seconds"),
            "cells": [{"index": i, "seconds": round(s, 2), "first_line": f} for i, s, f in cells]}


def _run_all(paths, args, load: int) -> list[dict]:
    rows = []
    with busy_processes(load):
        for path in paths:
            start_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            row = run_notebook(path.resolve(), args.fast, save=args.save)
            row["busy_processes"], row["load_average_at_start"] = load, start_load
            rows.append(row)
            over = row["seconds"] > PER_NOTEBOOK_S
            verdict = row["error"] or (f"OVER {PER_NOTEBOOK_S} s" if over else "ok")
            print(f"{row['notebook']:<34} {row['seconds']:7.1f} s  ({load} busy, load average "
                  f"{start_load:.1f} at start; kernel CPU {row['kernel_cpu_seconds']} s)  "
                  f"{verdict}", flush=True)
            if args.cells:
                for c in sorted(row["cells"], key=lambda c: -c["seconds"])[:5]:
                    print(f"    cell {c['index']:>2} {c['seconds']:7.2f} s  {c['first_line']}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path,
                    help="default: notebooks/NN_*.ipynb in order")
    ap.add_argument("--fast", action="store_true", help="ADVLAB_FAST=1 (CI's sizes)")
    ap.add_argument("--cells", action="store_true", help="print the five slowest cells of each")
    ap.add_argument("--load", type=_loads, default=[0], metavar="K[,K...]",
                    help="busy background processes while the notebooks run (default 0); "
                         "several, comma-separated, run everything once per load")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "notebook_times.json")
    ap.add_argument("--save", type=Path, help="also write the executed notebooks to this folder")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    runs = {load: _run_all(paths, args, load) for load in args.load}
    print(f"{'notebook':<34}" + "".join(f"{f'load {k}':>12}" for k in runs))
    for i, path in enumerate(paths):
        print(f"{path.name:<34}" + "".join(f"{rows[i]['seconds']:10.1f} s" for rows in
                                            runs.values()))
    totals = {k: sum(r["seconds"] for r in rows) for k, rows in runs.items()}
    print(f"{'total':<34}" + "".join(f"{t:10.1f} s" for t in totals.values())
          + f"  (limits: {PER_NOTEBOOK_S} s each, {TOTAL_S} s in all)")
    report = {
        "mode": "fast" if args.fast else "default",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "niceness": os.nice(0),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "runs": [{"busy_processes": k, "notebooks": rows, "total_seconds": round(totals[k], 1)}
                 for k, rows in runs.items()],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written: {args.out}")
    broken = [r for rows in runs.values() for r in rows
              if r["error"] or r["seconds"] > PER_NOTEBOOK_S]
    return 1 if broken or max(totals.values()) > TOTAL_S else 0


if __name__ == "__main__":
    raise SystemExit(main())
