"""How strongly a submission's kernel is isolated, and the bubblewrap command that does it.

Three levels, chosen once per process by :func:`detect` (``ADVLAB_GRADER_ISOLATION`` may ask
for one: ``auto``, the default, ``uid``, ``namespaces`` or ``none``):

- ``uid`` (root with bubblewrap): the kernel runs in its own mount, pid, network, IPC and UTS
  namespaces, as its own unprivileged user id (one per submission, no capabilities, no new
  privileges) with a process limit. It sees a read-only view of the system (``/usr``, a few
  ``/etc`` files), of Python and its packages, of advlab's package folder and of MNIST, and its
  own working folder, HOME, TMPDIR and I/O folder; nothing else: not the checkout (so no
  ``solutions/``), not the grader's files, the output folder or other submissions.
- ``namespaces`` (bubblewrap without root, through user namespaces): the same view and
  namespaces, but the kernel's user id outside its namespace is the grader's.
- ``none`` (no bubblewrap, no namespaces, not Linux): a separate process group with resource
  limits, a private working folder, HOME and TMPDIR, as the grader's user. The grader says so
  at the start of a run and in every result; see ``docs/grading.md`` for what to do then.

In every level the grader kills all the kernel's processes (the pid namespace, the user id,
the process group and every process carrying the run's token) before it reads the results.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "ADVLAB_GRADER_ISOLATION"
TOKEN_VAR = "ADVLAB_SANDBOX"
UID_BASE = int(os.environ.get("ADVLAB_GRADER_UID_BASE", "1900000000"))
NPROC = 256
ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group",
    "nsswitch.conf", "hosts", "alternatives", "ssl", "mime.types", "fonts",
)
SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass(frozen=True)
class Isolation:
    """The isolation level in use and a sentence that says what it means."""

    level: str
    bwrap: str | None
    detail: str

    @property
    def weak(self) -> bool:
        """True when submissions are not in namespaces (the ``none`` level)."""
        return self.level == "none"

    def banner(self) -> str:
        """One line for the start of a run and the summary."""
        head = "isolation: " + self.level
        return f"{head} ({self.detail})"


def _probe(bwrap: str, as_root: bool) -> str:
    """'' when a trivial bubblewrap sandbox of this kind starts, else the error."""
    args = [bwrap, "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
            "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"] if as_root else [
        "--unshare-user", "--disable-userns"]
    try:
        r = subprocess.run([*args, "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return "" if r.returncode == 0 else r.stderr.decode(errors="replace").strip()[:300]


@functools.cache
def detect(requested: str | None = None) -> Isolation:
    """The strongest isolation this machine allows (or the one ``ADVLAB_GRADER_ISOLATION``
    names; asking for one that cannot be had is an error, never a silent downgrade)."""
    want = (requested or os.environ.get(ENV_VAR) or "auto").lower()
    if want not in ("auto", "uid", "namespaces", "none"):
        raise ValueError(f"{ENV_VAR}={want!r}: use auto, uid, namespaces or none")
    if want == "none":
        return Isolation("none", None, "asked for by " + ENV_VAR + "=none; " + WEAK)
    bwrap = shutil.which("bwrap") if sys.platform.startswith("linux") else None
    why = "not Linux" if not sys.platform.startswith("linux") else "bubblewrap (bwrap) not found"
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if bwrap and root and want in ("auto", "uid"):
        err = _probe(bwrap, as_root=True) or _closed_to_others(python_paths())
        if not err:
            return Isolation("uid", bwrap, STRONG + ", each submission as its own user id")
        why = f"bubblewrap failed as root: {err}"
    if bwrap and want in ("auto", "namespaces"):
        err = _probe(bwrap, as_root=False)
        if not err:
            return Isolation("namespaces", bwrap, STRONG + ", as the grader's user id")
        why = f"bubblewrap cannot create user namespaces: {err}"
    if want != "auto":
        raise RuntimeError(f"{ENV_VAR}={want} cannot be had here: {why}")
    return Isolation("none", None, f"{why}; {WEAK}")


def _closed_to_others(paths) -> str:
    """'' when another user id can read and enter each of ``paths``, else why not: a
    submission's own user id could not run Python from there. (The folders above them need no
    check: the sandbox makes its own, mode 0755, and binds only these.)"""
    for p in paths:
        try:
            mode = p.stat().st_mode
        except OSError:
            continue
        if p.is_dir() and mode & 0o005 != 0o005:
            return (f"{p} is closed to other users (mode {oct(mode & 0o777)}), so a "
                    f"submission's own user id could not run Python from it; "
                    f"`chmod o+rx {p}` allows uid isolation")
    return ""


STRONG = "bubblewrap: private mount, pid, network and IPC namespaces, read-only system view"
WEAK = (
    "WEAK: kernels run as the grader's user without namespaces and can read what that user "
    "can read; see docs/grading.md"
)


# ---------------------------------------------------------------------------------------------
# What the kernel may see


def _advlab_package() -> Path:
    import advlab

    return Path(advlab.__file__).resolve().parent


def python_paths() -> list[Path]:
    """Folders the kernel's Python needs, read-only: the interpreter's prefix, the virtual
    environment, site-packages and the folders their ``.pth`` files add (except a folder
    holding advlab's checkout: only the package itself is shown, never ``solutions/``)."""
    pkg = _advlab_package()
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), pkg}
    site = [Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")]
    for sp in site:
        paths.add(sp.resolve())
        for pth in sorted(sp.glob("*.pth")) if sp.is_dir() else []:
            for line in pth.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "import")) and Path(line).is_dir():
                    paths.add(Path(line).resolve())
    exe = Path(sys.executable).resolve()
    paths.add(exe.parent.parent if exe.parent.name == "bin" else exe.parent)
    paths = {p for p in paths if p.exists() and p != pkg.parent and p not in pkg.parents}
    paths.discard(pkg)  # the checkout (or a folder above it) is never shown: only advlab/
    keep = sorted(p for p in paths if not any(q in p.parents for q in paths))
    return keep + [pkg]


def bwrap_command(iso: Isolation, scratch: Scratch, data: Path | None) -> list[str]:
    """The bubblewrap arguments (up to ``--``) for one kernel of one submission."""
    args = [iso.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading"]
    if iso.level == "uid":
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--disable-userns"]
    made = {Path("/")}

    def mount(op: str, src: str | None, dest: Path, *pre: str) -> None:
        for parent in reversed(dest.parents):  # bubblewrap would make them 0700
            if parent not in made:
                args.extend(["--perms", "0755", "--dir", str(parent)])
                made.add(parent)
        args.extend([*pre, op, *([src] if src is not None else []), str(dest)])
        made.add(dest)

    for name in SYSTEM:
        p = Path("/") / name
        if p.is_symlink():
            mount("--symlink", os.readlink(p), p)
        elif p.is_dir():
            mount("--ro-bind", str(p), p)
    for name in ETC:
        if (Path("/etc") / name).exists():
            mount("--ro-bind", f"/etc/{name}", Path("/etc") / name)
    if Path("/sys/devices/system/cpu").is_dir():  # torch reads the CPU topology
        mount("--ro-bind", "/sys/devices/system/cpu", Path("/sys/devices/system/cpu"))
    # a private /tmp first: Python, its virtual environment or the data may live below /tmp
    # (CI's fresh venv does), and a later tmpfs would hide them
    mount("--tmpfs", None, Path("/tmp"), "--size", str(16 * 2**20), "--perms", "01777")
    for p in python_paths():
        mount("--ro-bind", str(p), p)
    if data is not None and data.is_dir():
        mount("--ro-bind", str(data), data)
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(64 * 2**20), "--tmpfs", "/dev/shm"]
    for d in (scratch.work, scratch.home, scratch.io, scratch.tmp):
        mount("--bind", str(d), d)
    mount("--ro-bind", str(scratch.inbox), scratch.inbox)
    args += ["--remount-ro", "/", "--chdir", str(scratch.work)]
    return args


@dataclass
class Scratch:
    """A submission's folders on the grader's disk (all below ``root``).

    ``work`` (cwd), ``home``, ``tmp`` and ``io`` (the kernel's sockets and output files) are
    the kernel's; ``inbox`` (connection files, case inputs) is written by the grader only and
    read-only for the kernel; ``log`` is the grader's, not visible to the kernel.
    """

    root: Path

    def __post_init__(self):
        self.work, self.home, self.tmp = self.root / "work", self.root / "home", self.root / "tmp"
        self.io, self.inbox, self.log = self.root / "io", self.root / "in", self.root / "log"

    def create(self, uid: int | None) -> None:
        """Make the folders; hand the kernel's to ``uid`` (when the grader is root)."""
        self.root.mkdir(mode=0o700, exist_ok=True)
        for d in (self.work, self.home, self.tmp, self.io):
            d.mkdir(mode=0o700, exist_ok=True)
            if uid is not None:
                os.chown(d, uid, uid)
        self.inbox.mkdir(mode=0o755, exist_ok=True)
        self.log.mkdir(mode=0o700, exist_ok=True)

    def reset_home(self, uid: int | None) -> None:
        """A fresh, empty HOME (no startup files left by a previous kernel)."""
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(mode=0o700)
        if uid is not None:
            os.chown(self.home, uid, uid)


_uids = itertools.count(1)


def allocate_uid(iso: Isolation) -> int | None:
    """A user id no other submission of this process uses (``uid`` level), else None."""
    if iso.level != "uid":
        return None
    return UID_BASE + (os.getpid() % 1000) * 100000 + next(_uids) % 100000


# ---------------------------------------------------------------------------------------------
# Ending every process a submission started


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids += [int(k) for k in fh.read().split()]
    except OSError:
        pass
    return kids


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    seen: set[int] = set()
    todo = [pid]
    while todo:
        for kid in _children(todo.pop()):
            if kid not in seen:
                seen.add(kid)
                todo.append(kid)
    return seen


def _status(pid: int) -> tuple[str, int] | None:
    """(state letter, real uid) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            text = fh.read()
    except OSError:
        return None
    state = text.split("State:", 1)[1].split()[0] if "State:" in text else "?"
    uid = int(text.split("Uid:", 1)[1].split()[0]) if "Uid:" in text else -1
    return state, uid


def _has_token(pid: int, token: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return token in fh.read().split(b"\0")
    except OSError:
        return False


def tagged_processes(uid: int | None, token: str) -> set[int]:
    """Live processes of the sandbox user ``uid`` or carrying ``ADVLAB_SANDBOX=token``."""
    if not os.path.isdir("/proc"):
        return set()
    tag = f"{TOKEN_VAR}={token}".encode()
    found = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        st = _status(pid)
        if st is None or st[0] == "Z":
            continue
        if (uid is not None and st[1] == uid) or _has_token(pid, tag):
            found.add(pid)
    return found


def kill_everything(pids: set[int], uid: int | None, token: str, wait: float = 10.0) -> list[int]:
    """SIGKILL ``pids`` and every process of ``uid`` or with ``token``, until none is left.

    Returns the processes still alive after ``wait`` seconds (normally none).
    """
    deadline = time.monotonic() + wait
    while True:
        alive = {p for p in pids if (st := _status(p)) is not None and st[0] != "Z"}
        alive |= tagged_processes(uid, token)
        for pid in list(alive):
            alive |= descendants(pid)
        if not alive or time.monotonic() > deadline:
            return sorted(alive)
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pids = alive
        time.sleep(0.05)
