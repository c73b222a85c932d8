"""Kernel launcher that applies resource limits before starting ``ipykernel``.

``python -m advlab.course.sandbox --memory-mb 2048 -f CONNECTION_FILE`` sets

- ``RLIMIT_DATA`` (heap and anonymous memory: a memory hog gets ``MemoryError`` /
  a failed allocation instead of taking the machine down; unlike ``RLIMIT_AS`` it does not
  count the large shared libraries ``torch`` maps),
- ``RLIMIT_FSIZE`` (largest file the kernel may write) and ``RLIMIT_CORE`` = 0,

and, with ``--uid U`` (inside a bubblewrap sandbox started by root, see
:mod:`advlab.course.isolation`), ``RLIMIT_NPROC`` and then drops to user and group ``U`` with
no supplementary groups (which also drops every capability), then replaces itself with
``python -m ipykernel_launcher -f CONNECTION_FILE``.
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


def drop_privileges(uid: int, nproc: int) -> None:
    """Become the unprivileged user ``uid`` (group ``uid``) for good; limit its processes."""
    if nproc > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit(f"sandbox: could not become user {uid}")


def main(argv: list[str] | None = None) -> None:
    """Parse the limits, apply them and exec the IPython kernel."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--memory-mb", type=int, default=2048)
    p.add_argument("--file-mb", type=int, default=256)
    p.add_argument("--uid", type=int, default=-1, help="drop to this user id (root only)")
    p.add_argument("--nproc", type=int, default=0, help="RLIMIT_NPROC for that user")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("-f", dest="connection_file", help="start ipykernel with this connection file")
    g.add_argument("-c", dest="code", help="run this Python code instead (for tests)")
    p.add_argument("code_args", nargs="*", help="sys.argv[1:] for -c CODE")
    args = p.parse_args(argv)
    apply_limits(args.memory_mb, args.file_mb)
    if args.uid >= 0:
        drop_privileges(args.uid, args.nproc)
    if os.getppid() == 1:  # under a pid namespace's init: ipykernel would take it for orphaning
        os.environ.pop("JPY_PARENT_PID", None)
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []  # no cwd on sys.path
    if args.code is not None:
        cmd = [sys.executable, "-I", "-c", args.code, *args.code_args]
    else:
        cmd = [sys.executable, *safe_path, "-m", "ipykernel_launcher", "-f", args.connection_file]
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
