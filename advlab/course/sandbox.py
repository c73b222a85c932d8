"""Kernel launcher that applies resource limits before starting ``ipykernel``.

``python -m advlab.course.sandbox --memory-mb 2048 -f CONNECTION_FILE`` sets

- ``RLIMIT_DATA`` (heap and anonymous memory: a memory hog gets ``MemoryError`` /
  a failed allocation instead of taking the machine down; unlike ``RLIMIT_AS`` it does not
  count the large shared libraries ``torch`` maps),
- ``RLIMIT_FSIZE`` (largest file the kernel may write) and ``RLIMIT_CORE`` = 0,

then replaces itself with ``python -m ipykernel_launcher -f CONNECTION_FILE``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def apply_limits(memory_mb: int, file_mb: int) -> None:
    """Set the memory, file-size and core-dump limits of this process (inherited on exec)."""
    if memory_mb > 0:
        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if file_mb > 0:
        limit = file_mb * 2**20
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> None:
    """Parse the limits, apply them and exec the IPython kernel."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--memory-mb", type=int, default=2048)
    p.add_argument("--file-mb", type=int, default=256)
    p.add_argument("-f", dest="connection_file", required=True)
    args = p.parse_args(argv)
    apply_limits(args.memory_mb, args.file_mb)
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []  # no cwd on sys.path
    cmd = [sys.executable, *safe_path, "-m", "ipykernel_launcher", "-f", args.connection_file]
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
