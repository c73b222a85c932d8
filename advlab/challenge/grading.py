"""Grading a class's challenge submissions, one track at a time, and writing every result.

``grade_track(ch, "attack", folder, out)`` reads every submission up front (course intake:
unique names, no links, nothing outside the folder), grades each (attack notebooks in the
sandbox, possibly several at once; defenses in this process, one after another, since the
trusted evaluation already uses every core), then writes:

- ``OUT/<track>/<student>/results.json`` (Gradescope's format, with its ``leaderboard`` key),
- ``OUT/<track>.csv`` and ``OUT/<track>.json`` (the ranked leaderboard rows),
- ``OUT/index.html`` (both tracks' leaderboards, sortable, no server needed: :mod:`.board`).
"""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import attack, board, defense
from .results import TRACKS, Entry, write_student_results
from .spec import Challenge, ChallengeError, held_out


def _with_clash(e: Entry, clash: str) -> Entry:
    if clash:
        e.problems.insert(0, clash)
    return e


def grade_attacks(ch: Challenge, folder: Path, jobs: int = 1, progress=None) -> list[Entry]:
    """Every attack notebook in ``folder``, graded in the sandbox."""
    from ..course import intake

    try:
        subs = intake.find_submissions(Path(folder), ch.attack.notebook)
    except FileNotFoundError as exc:
        raise ChallengeError(str(exc)) from None
    if not subs:
        raise ChallengeError(f"no submissions in {str(folder)!r}: one NAME.ipynb per student, "
                             f"or one folder per student holding {ch.attack.notebook}")
    prep = attack.setup(ch)
    from ..course import isolation

    iso = isolation.detect()
    if iso.weak:  # said at the start of the run, and in every entry (``isolation``)
        warnings.warn(f"advlab challenge grade: {iso.banner()}", RuntimeWarning, stacklevel=2)

    def one(sub) -> Entry:
        if sub.raw is None:
            e = attack.not_graded(sub.student, "attack", f"not graded: {sub.problem}")
        else:
            e = attack.grade_attack(ch, sub.raw, sub.student, sub.path.name, prep)
        if progress:
            progress(e)
        return _with_clash(e, sub.clash)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, subs))


def grade_defenses(ch: Challenge, folder: Path, progress=None) -> list[Entry]:
    """Every defense file in ``folder``, evaluated in this process."""
    try:
        subs = defense.find_defenses(Path(folder), ch.defense.file, ch.defense.max_mb)
    except FileNotFoundError as exc:
        raise ChallengeError(str(exc)) from None
    if not subs:
        raise ChallengeError(f"no submissions in {str(folder)!r}: one NAME.safetensors per "
                             f"student, or one folder per student holding {ch.defense.file}")
    images = held_out(ch)
    out = []
    for sub in subs:
        if sub.raw is None:
            e = attack.not_graded(sub.student, "defense", sub.problem or "not graded")
        else:
            e = defense.grade_defense(ch, sub.raw, sub.student, images)
        if progress:
            progress(e)
        out.append(_with_clash(e, sub.clash))
    return out


def grade_track(ch: Challenge, track: str, folder: Path, out_dir: Path | None = None,
                jobs: int = 1, progress=None) -> list[Entry]:
    """Grade one track's folder; write the results under ``out_dir`` when given."""
    if track not in TRACKS:
        raise ChallengeError(f"track {track!r}: choose one of {TRACKS}")
    if track == "attack":
        entries = grade_attacks(ch, folder, jobs, progress)
    else:
        entries = grade_defenses(ch, folder, progress)
    if out_dir is not None:
        write_track(ch, track, entries, Path(out_dir))
    return entries


def write_track(ch: Challenge, track: str, entries: list[Entry], out_dir: Path) -> None:
    """Per-student ``results.json``, the track's CSV and JSON, and the HTML page."""
    ranked = board.rank(entries, track)
    write_student_results(entries, out_dir / track, lambda e: board.gradescope_leaderboard(e))
    board.write_track_files(ch, track, ranked, out_dir)
    board.write_html(out_dir)


def grade_gradescope(ch: Challenge, track: str, folder: Path, results_json: Path) -> Entry:
    """Gradescope mode: ``folder`` holds one student's files; write ``results_json``."""
    import os

    from ..course import intake

    folder = Path(folder)
    if not folder.is_dir():
        raise ChallengeError(f"submission folder {str(folder)!r} does not exist")
    root = Path(os.path.realpath(folder))
    if track == "attack":
        path, why = intake.notebook_in(root, ch.attack.notebook)
    else:
        path, why = defense.pick_file(root, ch.defense.file)
    raw = None
    if path is not None:
        limit = ch.defense.max_mb * 2**20 if track == "defense" else intake.MAX_NOTEBOOK_BYTES
        try:
            raw = intake.read_submitted_file(path, root, limit)
        except intake.RefusedFile as exc:
            why = f"refused: {exc}"
    if raw is None:
        e = attack.not_graded("student", track, why or "nothing was submitted")
    elif track == "attack":
        e = attack.grade_attack(ch, raw, "student", path.name)
    else:
        e = defense.grade_defense(ch, raw, "student")
    results_json = Path(results_json)
    results_json.parent.mkdir(parents=True, exist_ok=True)
    results_json.write_text(json.dumps(e.as_gradescope(board.gradescope_leaderboard(e)),
                                       indent=2) + "\n")
    return e
