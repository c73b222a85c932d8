"""The pretrained MNIST model zoo: small CompactCNNs trained at the paper's threat model.

    import advlab.zoo
    model = advlab.zoo.load("mnist-linf")      # offline: the weights ship with the package
    advlab.zoo.available()                     # the models whose weights are shipped

Every zoo model is one entry of the zoo manifest, ``advlab/zoo/manifest.json`` (data, written
by ``python -m advlab.zoo.publish``, never by hand-editing Python): its name, the recipe it was
trained with (``advlab.train.recipes``), the architecture, the sha256 of its weights, its
published counterpart (a row of ``advlab.zoo.published.ROWS``) and its status: "shipped"
(the weights ship with the package), "planned" (not trained yet) or "not shipped" (trained and
measured, its weights left out; ``docs/experiments/README.md`` says why). ``MANIFEST`` holds
every entry, ``REGISTRY`` the shipped ones, ``PLANNED`` the zoo's models (shipped or planned).

Weights are safetensors files (never pickle) in ``advlab/zoo/weights/``; each is checked
against the sha256 in the manifest before it is read, and a file that does not match is refused
(``ZooIntegrityError``). Every model has a card (``card(name)``: recipe, training time and
hardware, measured table) and its training log in ``advlab/zoo/logs/``. Retrain one with
``advlab train --recipe RECIPE`` (its manifest entry names the recipe).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by load(), not here: `advlab zoo --help` starts at once
    import torch
    from torch import nn

__all__ = [
    "ZooEntry",
    "ZooError",
    "ZooIntegrityError",
    "MANIFEST",
    "MANIFEST_PATH",
    "REGISTRY",
    "PLANNED",
    "STATUSES",
    "available",
    "load",
    "card",
    "weights_path",
    "sha256_of",
    "verify",
    "read_manifest",
    "write_manifest",
    "refresh",
]

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights"
CARDS = HERE / "cards"
LOGS = HERE / "logs"
MANIFEST_PATH = HERE / "manifest.json"

STATUSES = ("shipped", "planned", "not shipped")
# The fields of a manifest entry, in the order the file writes them.
FIELDS = ("name", "status", "recipe", "arch", "sha256", "published", "description")
_ABOUT = ("The advlab MNIST zoo: one entry per model. Written by `python -m advlab.zoo.publish` "
          "(json, this key order); read by advlab.zoo. status: shipped (weights in "
          "advlab/zoo/weights, checked against sha256), planned (not trained yet) or not "
          "shipped (trained and measured, weights left out; docs/experiments/README.md). "
          "published: the counterpart's key in advlab.zoo.published.ROWS, or null.")


class ZooError(LookupError):
    """An unknown or not yet trained zoo model."""


class ZooIntegrityError(RuntimeError):
    """A weights file whose sha256 does not match the registry: it is refused."""


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model as the manifest describes it: its file, the sha256 of that file (None while
    planned), the architecture, the recipe (default: the model's name), the status and the key
    of its published counterpart (``advlab.zoo.published.ROWS``)."""

    name: str
    sha256: str | None
    arch: str = "compact-cnn"
    description: str = ""
    recipe: str = ""
    status: str = "shipped"
    published: str | None = None

    def __post_init__(self):
        if not self.recipe:
            object.__setattr__(self, "recipe", self.name)
        if self.status not in STATUSES:
            raise ValueError(f"zoo model {self.name!r}: status {self.status!r} is not one of "
                             f"{STATUSES}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"zoo model {self.name!r}: sha256 {self.sha256!r} is not 64 hex "
                             "digits")
        if self.status == "shipped" and self.sha256 is None:
            raise ValueError(f"zoo model {self.name!r} is shipped but has no sha256")

    @property
    def file(self) -> str:
        return f"{self.name}.safetensors"

    def as_json(self) -> dict:
        """The entry as the manifest file writes it (keys in ``FIELDS`` order)."""
        return {k: getattr(self, k) for k in FIELDS}


def read_manifest(path: str | Path = MANIFEST_PATH) -> dict[str, ZooEntry]:
    """name -> entry, in the file's order; a malformed file is an error that names the entry."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, ZooEntry] = {}
    for i, raw in enumerate(data["models"]):
        if set(raw) != set(FIELDS):
            raise ValueError(f"{path}: entry {i} ({raw.get('name')!r}) has the keys "
                             f"{sorted(raw)}, expected {sorted(FIELDS)}")
        if raw["name"] in out:
            raise ValueError(f"{path}: zoo model {raw['name']!r} is listed twice")
        out[raw["name"]] = ZooEntry(**raw)
    return out


def write_manifest(entries, path: str | Path = MANIFEST_PATH) -> Path:
    """Write the entries (ZooEntry objects, in this order) as the manifest file: json, the keys
    in a fixed order, so that reading and writing it again gives the same bytes."""
    models = [e.as_json() for e in (entries.values() if isinstance(entries, dict) else entries)]
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"a zoo model is listed twice: {names}")
    text = json.dumps({"about": _ABOUT, "models": models}, indent=1, ensure_ascii=False)
    path = Path(path)
    path.write_text(text + "\n", encoding="utf-8")
    return path


# name -> entry, for every model of the manifest (any status).
MANIFEST: dict[str, ZooEntry] = {}
# name -> entry, for the models whose weights ship with this version.
REGISTRY: dict[str, ZooEntry] = {}
# name -> what it is trained against, for the zoo's models (shipped or not trained yet).
PLANNED: dict[str, str] = {}


def refresh(path: str | Path = MANIFEST_PATH) -> None:
    """Re-read the manifest into ``MANIFEST``, ``REGISTRY``, ``PLANNED`` (and the zoo's published
    counterparts), in place: whoever imported them sees the new entries."""
    entries = read_manifest(path)
    MANIFEST.clear()
    MANIFEST.update(entries)
    REGISTRY.clear()
    REGISTRY.update({n: e for n, e in entries.items() if e.status == "shipped"})
    PLANNED.clear()
    PLANNED.update({n: e.description for n, e in entries.items()
                    if e.status in ("shipped", "planned")})
    published = sys.modules.get(f"{__name__}.published")
    if published is not None:
        published.PUBLISHED.clear()
        published.PUBLISHED.update(published.counterparts())


refresh()


def available() -> list[str]:
    """The names of the models whose weights ship with this version, in manifest order."""
    return list(REGISTRY)


def _entry(name: str) -> ZooEntry:
    if name in REGISTRY:
        return REGISTRY[name]
    entry = MANIFEST.get(name)
    if entry is not None and entry.status == "planned":
        raise ZooError(
            f"zoo model {name!r} ({entry.description}) is not trained in this version; train it "
            f"with `advlab train --recipe {entry.recipe}`. Shipped: "
            f"{', '.join(available()) or 'none'}"
        )
    if entry is not None:
        raise ZooError(
            f"zoo model {name!r} ({entry.description}) was trained but its weights do not ship "
            f"with this version; retrain it with `advlab train --recipe {entry.recipe}`. "
            f"Shipped: {', '.join(available()) or 'none'}"
        )
    raise ZooError(f"unknown zoo model {name!r}; shipped: {', '.join(available()) or 'none'}")


def weights_path(name: str) -> Path:
    return WEIGHTS / _entry(name).file


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str, path: str | Path | None = None) -> Path:
    """Check the file of ``name`` against its sha256 in the manifest; return its path or raise."""
    entry = _entry(name)
    path = Path(path) if path is not None else WEIGHTS / entry.file
    if not path.is_file():
        raise ZooError(f"the weights of {name!r} are missing: {path} (a broken installation? "
                       "the package data must include advlab/zoo/weights/*.safetensors)")
    digest = sha256_of(path)
    if digest != entry.sha256:
        raise ZooIntegrityError(
            f"refusing to load {path}: its sha256 is {digest} but the zoo manifest expects "
            f"{entry.sha256} for {name!r}. The file was modified or corrupted; reinstall advlab "
            f"or retrain it with `advlab train --recipe {entry.recipe}`."
        )
    return path


def load(
    name: str, device: str | torch.device = "cpu", path: str | Path | None = None
) -> nn.Module:
    """The zoo model ``name`` in eval mode: (B, 1, 28, 28) images in [0, 1] -> (B, 10) logits.

    The file (``path`` overrides the shipped one, e.g. a fresh retraining's copy, and must still
    match the registered sha256) is hash-checked before anything in it is read; only tensors are
    read (safetensors), never pickled code.
    """
    from safetensors.torch import load_file

    from ..models import build_model

    entry = _entry(name)
    checked = verify(name, path)
    state = load_file(str(checked), device="cpu")
    model = build_model(entry.arch)
    model.load_state_dict(state)
    return model.to(device).eval()


def card(name: str) -> str:
    """The model card (markdown): recipe, training time and hardware, measured table."""
    _entry(name)
    path = CARDS / f"{name}.md"
    return path.read_text() if path.exists() else f"(no card for {name})"
