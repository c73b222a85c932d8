"""Wall time of each course notebook, run top to bottom in a real kernel (a benchmark, not a test).

    ADVLAB_DATA=... python benchmarks/notebook_times.py                # default mode, all notebooks
    python benchmarks/notebook_times.py --fast notebooks/01_*.ipynb    # fast mode, one notebook
    python benchmarks/notebook_times.py --cells                        # also the slowest cells

The course promises each notebook runs in at most 3 minutes on 2 CPU cores and all of them in at
most 20; the script reports both limits and exits 1 when one is broken. Results are written as
JSON (``--out``, default ``runs/notebook_times.json``) with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path,
                    help="default: notebooks/NN_*.ipynb in order")
    ap.add_argument("--fast", action="store_true", help="ADVLAB_FAST=1 (CI's sizes)")
    ap.add_argument("--cells", action="store_true", help="print the five slowest cells of each")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "notebook_times.json")
    ap.add_argument("--save", type=Path, help="also write the executed notebooks to this folder")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows = []
    for path in paths:
        row = run_notebook(path.resolve(), args.fast, save=args.save)
        rows.append(row)
        ok = row["error"] is None and row["seconds"] <= PER_NOTEBOOK_S
        print(f"{row['notebook']:<34} {row['seconds']:7.1f} s  "
              f"(kernel CPU {row['kernel_cpu_seconds']} s)  "
              f"{'ok' if ok else 'OVER ' + str(PER_NOTEBOOK_S) + ' s' if not row['error'] else ''}"
              f"{row['error'] or ''}", flush=True)
        if args.cells:
            for c in sorted(row["cells"], key=lambda c: -c["seconds"])[:5]:
                print(f"    cell {c['index']:>2} {c['seconds']:7.2f} s  {c['first_line']}")
    total = sum(r["seconds"] for r in rows)
    print(f"{'total':<34} {total:7.1f} s  (limits: {PER_NOTEBOOK_S} s each, {TOTAL_S} s in all)")
    report = {
        "mode": "fast" if args.fast else "default",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0],
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "notebooks": rows,
        "total_seconds": round(total, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written: {args.out}")
    broken = [r for r in rows if r["error"] or r["seconds"] > PER_NOTEBOOK_S]
    return 1 if broken or total > TOTAL_S else 0


if __name__ == "__main__":
    raise SystemExit(main())
