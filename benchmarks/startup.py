"""Start-up of the command line and the time of the main job, as ratios to a torch import.

    python benchmarks/startup.py                 # --help of every command, then `advlab eval`
    python benchmarks/startup.py --no-main       # start-up only (seconds)
    python benchmarks/startup.py --repeats 7 --json runs/startup.json

Each command runs in a fresh process, interleaved with the baseline ``python -c "import torch"``
in the same run (so a busy machine slows both alike); the table gives the median (min) wall
time of the repeats and each median over the baseline's. ``advlab eval`` (no arguments: two zoo
models, lite attacks, the first ``advlab.cli.eval.DEFAULT_N`` test images) runs ``--main-repeats``
times (default 1). The issue's targets: ``--help`` well under a second, the main job <= 60 s on
2 idle CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HELP = [["--help"], ["eval", "--help"], ["train", "--help"], ["zoo", "--help"],
        ["zoo", "table", "--help"], ["course", "--help"], ["grade", "--help"]]


def advlab_command() -> list[str]:
    """The ``advlab`` script of this Python's environment, else ``python -m advlab``."""
    script = Path(sys.executable).with_name("advlab")
    if script.exists():
        return [str(script)]
    found = shutil.which("advlab")
    return [found] if found else [sys.executable, "-m", "advlab"]


def wall(cmd: list[str], quiet: bool = True) -> float:
    """Seconds from start to exit of ``cmd`` (which must succeed)."""
    t0 = time.perf_counter()
    out = subprocess.DEVNULL if quiet else None
    subprocess.run(cmd, check=True, stdout=out, stderr=out)
    return time.perf_counter() - t0


def measure(commands: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    """name -> wall times, the commands interleaved repeat by repeat."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    return times


def report(times: dict[str, list[float]], base: str) -> list[str]:
    ref = statistics.median(times[base])
    lines = [f"{'command':<28}{'median (min) s':>18}{'/ import torch':>16}"]
    for name, ts in times.items():
        med = statistics.median(ts)
        lines.append(f"{name:<28}{f'{med:.2f} ({min(ts):.2f})':>18}{med / ref:>16.2f}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="runs of each start-up command (5)")
    p.add_argument("--main-repeats", type=int, default=1, help="runs of `advlab eval` (1)")
    p.add_argument("--no-main", action="store_true", help="skip the main job")
    p.add_argument("--json", default=None, help="also write the times here")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.main_repeats < 1:
        p.error("--repeats and --main-repeats must be >= 1")
    advlab = advlab_command()
    base = "python -c 'import torch'"
    commands = {base: [sys.executable, "-c", "import torch"]}
    commands.update({"advlab " + " ".join(h): advlab + h for h in HELP})
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, {sys.executable}")
    times = measure(commands, args.repeats)
    if not args.no_main:
        main_times = []
        for _ in range(args.main_repeats):
            main_times.append(wall([sys.executable, "-c", "import torch"]))
            t0 = time.perf_counter()
            subprocess.run(advlab + ["eval"], check=True)  # its table is part of the result
            times.setdefault("advlab eval", []).append(time.perf_counter() - t0)
        times[base] += main_times
    lines = report(times, base)
    print("\n".join(lines))
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(times, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
