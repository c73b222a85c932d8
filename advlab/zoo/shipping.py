"""Ship a finished training run: its weights and log into the package, its sha256 into the
manifest (``advlab/zoo/manifest.json``: data, never Python source)."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import (
    LOGS,
    MANIFEST_PATH,
    WEIGHTS,
    ZooEntry,
    read_manifest,
    refresh,
    sha256_of,
    write_manifest,
)
from .model_card import description

__all__ = ["publish", "register_weights", "run_weights"]


def register_weights(name: str, sha: str, manifest: str | Path = MANIFEST_PATH) -> ZooEntry:
    """Record ``name``'s sha256 in the zoo manifest (the file ``manifest``) and mark it shipped.

    An entry already there keeps its order, recipe, published counterpart and description; a
    new one goes last, with the recipe of its name. The architecture is the recipe's (what the
    run was trained with). The file is written as data (``advlab.zoo.write_manifest``); when it
    is the package's own, ``advlab.zoo``'s registry is refreshed at once.
    """
    from ..train.recipes import RECIPES

    entries = read_manifest(manifest)
    old = entries.get(name)
    recipe = old.recipe if old is not None else name
    arch = RECIPES[recipe].arch if recipe in RECIPES else (old.arch if old else "compact-cnn")
    entries[name] = ZooEntry(name, sha, arch=arch, description=description(name, entries),
                             recipe=recipe, status="shipped",
                             published=old.published if old is not None else None)
    write_manifest(entries, manifest)
    if Path(manifest).resolve() == MANIFEST_PATH.resolve():
        refresh()
    return entries[name]


def run_weights(run: Path, which: str = "best") -> Path:
    """The weights of a run to ship: ``best.safetensors`` (the epoch with the best monitored
    union, early stopping) when ``which`` is "best" and the run kept one, else the last epoch's."""
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    best = run / "best.safetensors"
    path = best if which == "best" and best.exists() else run / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: has the run in {run} finished?")
    return path


def publish(name: str, run: Path, which: str = "best") -> str:
    """Copy a run's weights (see ``run_weights``) and log into the package; register the sha256."""
    from safetensors import safe_open

    WEIGHTS.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    dest = WEIGHTS / f"{name}.safetensors"
    src = run_weights(run, which)
    with safe_open(str(src), "pt") as f:
        meta = f.metadata() or {}
    shutil.copyfile(src, dest)
    shutil.copyfile(run / "train.log", LOGS / f"{name}.log")
    if src.name == "best.safetensors":
        with open(LOGS / f"{name}.log", "a") as f:
            f.write(f"shipped: best.safetensors, the weights after epoch {meta.get('epoch')} "
                    f"(best monitored union {float(meta.get('test_union', 'nan')):.4f})\n")
    sha = sha256_of(dest)
    register_weights(name, sha)
    return sha
