"""The defense track: a student hands in weights (safetensors only) for an architecture from the
challenge's fixed list; the grader evaluates them with the trusted attacks.

A submission is ``NAME.safetensors`` or a folder ``NAME/`` holding one (``defense.safetensors``
preferred). The file's metadata names the architecture (``save_defense`` writes it); a
``quantized-*`` architecture puts :class:`advlab.models.masking.Quantize` (metadata ``levels``) in
front of the network, the classic input-quantisation defence. Pickles (``.pt``, ``.pth``,
``.pkl``, ``.ckpt``, ``.bin``) are refused unopened: loading one can run any code.

Grading, all in the grader's process (the file holds tensors only, the code is ours):

1. the tensors must match the architecture exactly (names, shapes), be floating and finite;
2. clean accuracy on the held-out images must reach the floor, else the model is not ranked
   (and no attack is spent on it);
3. :func:`advlab.evaluate_union` with the challenge's attacks (``"strong"``:
   :func:`advlab.presets.trusted_attacks`) gives the per-threat and union accuracy, the score;
4. :func:`advlab.diagnose` runs on ``diagnose_n`` images per l_p threat and its flags (gradient
   masking) are shown on the leaderboard. The score is the trusted evaluation's either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import torch

from ..course.intake import Submission
from .results import Entry, test
from .spec import QUANTIZED, Challenge, held_out

PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar", ".zip", ".npz")
SUFFIX = ".safetensors"


class RefusedDefense(ValueError):
    """A defense file the grader will not evaluate; the message tells the student what to do."""


def pickle_message(name: str) -> str:
    """The refusal for a pickle, with the fix."""
    return (f"{name} is a pickle (torch.save): loading one can run arbitrary code, so the grader "
            "does not open it. Save your weights as safetensors instead: "
            "advlab.challenge.save_defense(model, 'defense.safetensors', "
            "architecture='compact-cnn')")


def save_defense(model: torch.nn.Module, path: str | Path, architecture: str,
                 levels: int | None = None) -> Path:
    """Write ``model``'s weights as a defense submission (safetensors, architecture in the
    metadata). For ``quantized-ARCH`` pass the network behind the quantiser (or the
    ``masked_model`` Sequential) and its ``levels``."""
    from safetensors.torch import save_file

    if architecture.startswith(QUANTIZED) and isinstance(model, torch.nn.Sequential) and len(
            model) == 2 and hasattr(model[0], "levels"):
        levels = levels or model[0].levels
        model = model[1]
    meta = {"architecture": architecture, "format": "advlab-defense-1"}
    if architecture.startswith(QUANTIZED):
        meta["levels"] = str(int(levels or 16))
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return Path(path)


def read_metadata(blob: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file (raises RefusedDefense if not safetensors)."""
    if blob[:2] == b"PK" or blob[:1] == b"\x80":
        raise RefusedDefense(pickle_message("the file"))
    if len(blob) < 8:
        raise RefusedDefense("the file is too short to be safetensors")
    (size,) = struct.unpack("<Q", blob[:8])
    if not 0 < size <= min(len(blob) - 8, 100 * 2**20):
        raise RefusedDefense("the file is not a safetensors file (bad header length)")
    try:
        header = json.loads(blob[8:8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RefusedDefense("the file is not a safetensors file (bad header)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def build_defense(blob: bytes, allowed: list[str]) -> tuple[torch.nn.Module, str]:
    """The submitted model in eval mode and its architecture; raises RefusedDefense."""
    from safetensors.torch import load as load_bytes

    from ..models import build_model
    from ..models.masking import Quantize

    meta = read_metadata(blob)
    arch = meta.get("architecture") or (allowed[0] if len(allowed) == 1 else "")
    if arch not in allowed:
        raise RefusedDefense(f"architecture {arch or '(none in the file metadata)'!r} is not one "
                             f"of this challenge's {allowed}; save with save_defense(model, path, "
                             "architecture=...)")
    try:
        state = load_bytes(blob)
    except Exception as exc:
        raise RefusedDefense(f"the file is not a readable safetensors file ({exc})") from None
    base = arch[len(QUANTIZED):] if arch.startswith(QUANTIZED) else arch
    net = build_model(base)
    _check_state(net, state, arch)
    net.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    if arch.startswith(QUANTIZED):
        try:
            levels = int(meta.get("levels", "16"))
            net = torch.nn.Sequential(Quantize(levels), net)
        except ValueError as exc:
            raise RefusedDefense(f"metadata 'levels' {meta.get('levels')!r}: {exc}") from None
    return net.eval(), arch


def _check_state(net: torch.nn.Module, state: dict, arch: str) -> None:
    want = net.state_dict()
    missing, extra = sorted(set(want) - set(state)), sorted(set(state) - set(want))
    if missing or extra:
        raise RefusedDefense(f"the tensors do not match {arch}: missing {missing[:4]}, "
                             f"unexpected {extra[:4]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(want[k].shape):
            raise RefusedDefense(f"{k} has shape {tuple(v.shape)}, {arch} needs "
                                 f"{tuple(want[k].shape)}")
        if not v.is_floating_point() or v.is_complex():
            raise RefusedDefense(f"{k} has dtype {v.dtype}; weights must be real floating")
        if not bool(torch.isfinite(v).all()):
            raise RefusedDefense(f"{k} holds NaN or inf")


# ---------------------------------------------------------------------------------------------
# Intake


# One student's hand-in (a unique name, the file and its bytes, or why it was refused): the
# grader's own intake record, shared with the exercises.
DefenseFile = Submission


def pick_file(folder: Path, preferred: str) -> tuple[Path | None, str]:
    files = sorted(p for p in folder.rglob("*") if not p.is_dir())
    if (folder / preferred).exists() or (folder / preferred).is_symlink():
        return folder / preferred, ""
    st = [p for p in files if p.name.endswith(SUFFIX)]
    if st:
        return st[0], ""
    pk = [p for p in files if p.suffix.lower() in PICKLE_SUFFIXES]
    if pk:
        return None, "refused: " + pickle_message(pk[0].name)
    return None, f"no {SUFFIX} file found; submit {preferred}"


def find_defenses(folder: Path, preferred: str, max_mb: int) -> list[DefenseFile]:
    """Every defense in ``folder`` (``NAME.safetensors``, ``NAME.pt`` (refused) or ``NAME/``),
    read up front under unique names; links and files outside the folder are refused."""
    from ..course import intake

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"submissions folder {str(folder)!r} does not exist")
    root = Path(os.path.realpath(folder))
    subs: list[DefenseFile] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        stem, suffix = os.path.splitext(entry.name)
        if entry.is_dir() and not entry.is_symlink():
            path, why = pick_file(entry, preferred)
            subs.append(DefenseFile(entry.name, entry.name + "/", path, problem=why))
        elif suffix == SUFFIX or entry.is_symlink():
            subs.append(DefenseFile(stem, entry.name, entry))
        elif suffix.lower() in PICKLE_SUFFIXES:
            subs.append(DefenseFile(stem, entry.name,
                                    problem="refused: " + pickle_message(entry.name)))
    intake.unique_names(subs)
    for s in subs:
        if s.path is not None and not s.problem:
            try:
                s.raw = intake.read_submitted_file(s.path, root, max_mb * 2**20)
            except intake.RefusedFile as exc:
                s.path, s.problem = None, f"refused: {exc}"
    return subs


# ---------------------------------------------------------------------------------------------
# Evaluation


def attacks_for(ch: Challenge) -> dict:
    """Threat name -> attacks for the defense track (``strong``: the trusted attacks)."""
    from ..evaluation import presets

    d = ch.defense
    if d.strength == "strong":
        return presets.trusted_attacks(ch.dataset, include=d.threats)
    return presets.attacks(ch.dataset, d.strength, include=d.threats)


def masking_flags(model, x, y, ch: Challenge) -> tuple[list[str], dict]:
    """:func:`advlab.diagnose` per l_p threat on the first ``diagnose_n`` images; returns the
    flags ("l1: gradient-free, unbounded") and the full reports as text."""
    from ..evaluation import presets
    from ..evaluation.diagnostics import diagnose

    d = ch.defense
    if d.diagnose_n <= 0:
        return [], {}
    flags, reports = [], {}
    all_threats = presets.threats(ch.dataset)
    for name in d.threats:
        if name == "rt":
            continue
        rep = diagnose(model, (x, y), all_threats[name], n=d.diagnose_n,
                       queries=d.diagnose_queries)
        reports[name] = str(rep)
        if rep.flags:
            flags.append(f"{name}: {', '.join(rep.flags)}")
    return flags, reports


def evaluate_defense(model, ch: Challenge, x, y, student: str = "student") -> Entry:
    """Score one loaded model on the held-out images (x, y)."""
    from ..evaluation.union import accuracy, evaluate_union

    d = ch.defense
    clean = accuracy(model, (x, y))
    ev = f"advlab.evaluate_union, {d.strength} attacks" + (
        " (the trusted evaluation: advlab.presets.trusted_attacks)" if d.strength == "strong"
        else " (NOT the trusted evaluation: an upper bound)") + f", n = {x.shape[0]}"
    if clean < d.clean_floor:
        why = (f"clean accuracy {100 * clean:.1f}% is below this challenge's floor "
               f"{100 * d.clean_floor:.1f}%: not ranked, no attack was run")
        t = test("union accuracy (clean accuracy above the floor)", 0.0, 100.0, why, "1")
        return Entry(student, "defense", 0.0, {"clean accuracy": 100 * clean}, False, [t],
                     problems=[why], evaluation=ev)
    res = evaluate_union(model, (x, y), attacks_for(ch), progress=False, keep_worst=False)
    metrics = {"union accuracy": 100 * res.union_accuracy, "clean accuracy": 100 * clean}
    metrics.update({f"{k} accuracy": 100 * res.accuracy(k) for k in res.robust})
    flags, reports = masking_flags(model, x, y, ch)
    metrics["masking flags"] = "; ".join(flags) or "none"
    text = res.table(f"union of {', '.join(d.threats)}") + "\n\n" + "\n\n".join(reports.values())
    t = test("union accuracy under the challenge's attacks", 100 * res.union_accuracy, 100.0,
             text, "1")
    e = Entry(student, "defense", 100 * res.union_accuracy, metrics, True, [t], evaluation=ev)
    if flags:
        e.flags.append("gradient masking suspected (advlab.diagnose): " + "; ".join(flags))
    return e


def grade_defense(ch: Challenge, raw: bytes, student: str = "student",
                  images: tuple | None = None) -> Entry:
    """Grade one defense file given as bytes; never raises because of what it contains."""
    from .attack import not_graded

    start = time.monotonic()
    x, y = images if images is not None else held_out(ch)
    try:
        model, arch = build_defense(raw, list(ch.defense.architectures))
    except RefusedDefense as exc:
        e = not_graded(student, "defense", f"refused: {exc}")
    else:
        e = evaluate_defense(model, ch, x, y, student)
        e.metrics["architecture"] = arch
    e.sha256, e.seconds = hashlib.sha256(raw).hexdigest(), time.monotonic() - start
    return e
