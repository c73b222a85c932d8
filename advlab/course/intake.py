"""Reading a class's submissions safely: unique student names, no symlinks, nothing outside.

:func:`find_submissions` lists a submissions folder (``NAME.ipynb`` files and ``NAME/``
folders), reads every notebook's bytes up front and gives each submission a student name that
is unique in the run (compared case-insensitively, so that the output folders cannot collide on
macOS or Windows either). Two entries that would share a name (``dup.ipynb`` and ``dup/``) are
both graded, under distinct names (``dup~0``, ``dup~1``), and the clash is reported in each one's
``problems``. A symbolic link, a hard-linked file, anything that is not a regular file, or a
path that resolves outside the submissions folder is refused with a reason, never followed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_NOTEBOOK_BYTES = 64 * 2**20
RESERVED = {"summary.csv"}


class RefusedFile(Exception):
    """A submitted path the grader will not read (a link, not a regular file, too large)."""


@dataclass
class Submission:
    """One student's hand-in: a unique name, the notebook (if any) and its bytes."""

    student: str
    entry: str
    path: Path | None = None
    raw: bytes | None = None
    problem: str = ""
    clash: str = ""


def read_submitted_file(path: Path, root: Path, limit: int = MAX_NOTEBOOK_BYTES) -> bytes:
    """The bytes of a submitted regular file inside ``root``; raises :class:`RefusedFile`.

    Opened with ``O_NOFOLLOW`` (a symlink is refused, not followed), checked to be a regular
    file with a single hard link, no larger than ``limit``, and to lie inside ``root``.
    """
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise RefusedFile(f"{path.name} lies outside the submissions folder")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if Path(path).is_symlink():
            raise RefusedFile(f"{path.name} is a symbolic link; submit the notebook") from None
        raise RefusedFile(f"{path.name} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise RefusedFile(f"{path.name} is not a regular file")
        if st.st_nlink > 1:
            raise RefusedFile(f"{path.name} is a hard link to another file; submit a plain copy")
        if st.st_size > limit:
            raise RefusedFile(f"{path.name} is larger than {limit // 2**20} MB")
        return fh.read(limit + 1)[:limit]


def notebook_in(folder: Path, preferred: str) -> tuple[Path | None, str]:
    """The notebook in a student's folder: ``preferred`` if present, else the first ``.ipynb``
    found (symlinked folders are not entered). Returns (path or None, reason when None)."""
    top = folder / preferred
    if top.is_symlink():
        return None, f"{preferred} is a symbolic link; submit the notebook itself"
    if top.is_file():
        return top, ""
    links = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".ipynb_checkpoints")
        for name in sorted(filenames):
            if name.endswith(".ipynb"):
                p = Path(dirpath) / name
                if p.is_symlink():
                    links.append(name)
                    continue
                return p, ""
    if links:
        return None, f"{links[0]} is a symbolic link; submit the notebook itself"
    return None, "no notebook (.ipynb) found in the student's folder"


def _entries(root: Path, preferred: str) -> list[Submission]:
    subs = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        is_nb = entry.name.endswith(".ipynb")
        name = entry.name[: -len(".ipynb")] if is_nb else entry.name
        if entry.is_symlink():
            if is_nb or entry.is_dir():
                why = f"{entry.name} is a symbolic link; submit the notebook itself"
                subs.append(Submission(name, entry.name, problem=f"refused: {why}"))
            continue
        if entry.is_file() and is_nb:
            subs.append(Submission(name, entry.name, entry))
        elif entry.is_dir():
            path, why = notebook_in(entry, preferred)
            problem = "" if path else (why if why.startswith("no notebook") else f"refused: {why}")
            subs.append(Submission(name, entry.name + "/", path, problem=problem))
    return subs


def unique_names(subs: list[Submission]) -> None:
    """Rename clashing students (case-insensitively, or a reserved name) to ``NAME~k``."""
    groups: dict[str, list[Submission]] = {}
    for s in subs:
        groups.setdefault(s.student.casefold(), []).append(s)
    taken = {key for key, group in groups.items() if len(group) == 1 and key not in RESERVED}
    for key, group in groups.items():
        if len(group) == 1 and key not in RESERVED:
            continue
        for s in group:
            k = 0
            while f"{s.student}~{k}".casefold() in taken or f"{s.student}~{k}".casefold() in groups:
                k += 1
            s.student = f"{s.student}~{k}"
            taken.add(s.student.casefold())
        listing = ", ".join(f"{s.entry} as {s.student}" for s in group)
        why = f"{len(group)} hand-ins share the name" if len(group) > 1 else "reserved name"
        for s in group:
            s.clash = f"name clash ({why} {key!r}): graded separately, {listing}"


def find_submissions(folder: Path, preferred: str) -> list[Submission]:
    """Every submission in ``folder`` (or the single notebook ``folder``), read up front."""
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"submissions folder {str(folder)!r} does not exist")
    root = Path(os.path.realpath(folder))
    if root.is_file():
        subs = [Submission(root.stem, root.name, root)]
        root = root.parent
    else:
        subs = _entries(root, preferred)
    unique_names(subs)
    for s in subs:
        if s.path is not None and not s.problem:
            try:
                s.raw = read_submitted_file(s.path, root)
            except RefusedFile as exc:
                s.path, s.problem = None, f"refused: {exc}"
    return subs
