"""The pretrained MNIST model zoo: small CompactCNNs trained at the paper's threat model.

    import advlab.zoo
    model = advlab.zoo.load("mnist-linf")      # offline: the weights ship with the package
    advlab.zoo.available()                     # the models whose weights are shipped

Weights are safetensors files (never pickle) in ``advlab/zoo/weights/``; each is checked
against the sha256 recorded in ``REGISTRY`` below before it is read, and a file that does not
match is refused (``ZooIntegrityError``). Every model has a card (``card(name)``: recipe,
training time and hardware, measured table) and its training log in ``advlab/zoo/logs/``.
Retrain one with ``advlab train --recipe NAME`` (the recipe of the same name).
"""

from __future__ import annotations

import hashlib
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
    "REGISTRY",
    "PLANNED",
    "available",
    "load",
    "card",
    "weights_path",
    "sha256_of",
    "verify",
]

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights"
CARDS = HERE / "cards"
LOGS = HERE / "logs"


class ZooError(LookupError):
    """An unknown or not yet trained zoo model."""


class ZooIntegrityError(RuntimeError):
    """A weights file whose sha256 does not match the registry: it is refused."""


@dataclass(frozen=True)
class ZooEntry:
    """A shipped model: its file, the sha256 of that file, the architecture and the recipe."""

    name: str
    sha256: str
    arch: str = "compact-cnn"
    description: str = ""

    @property
    def file(self) -> str:
        return f"{self.name}.safetensors"

    @property
    def recipe(self) -> str:
        return self.name


# Every zoo model the issue asks for, with what it is trained against (the recipe of that name).
PLANNED: dict[str, str] = {
    "mnist-standard": "standard training",
    "mnist-linf": "l_inf adversarial training (eps 0.3)",
    "mnist-l1": "l_1 adversarial training (eps 10, SLIDE)",
    "mnist-l2": "l_2 adversarial training (eps 2)",
    "mnist-rt": "rotation-translation adversarial training (+-30 deg, +-3 px; worst of 10)",
    "mnist-avg": "avg over l_inf, l_1, l_2 (train on all three attacks' outputs)",
    "mnist-max": "max over l_inf, l_1, l_2 (per example, the highest-loss attack)",
    "mnist-msd": "multi steepest descent over l_inf, l_1, l_2 (Maini et al. 2020)",
    "mnist-eat": "E-AT style over l_inf, l_1, l_2: one threat per batch (Croce & Hein 2022)",
    "mnist-linf-rt-avg": "avg over l_inf and rotation-translation",
    "mnist-linf-rt-max": "max over l_inf and rotation-translation",
}

# name -> entry. A model is added here (with the sha256 of its file) once it is trained.
# --- registry: written by `python -m advlab.zoo.publish` ---
REGISTRY: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "mnist-standard",
            "a87a9a0b6e3b535b6cf66751cce768c747a56fa37853d5a8f9d6555343b95722",
            description="standard training",
        ),
        ZooEntry(
            "mnist-linf",
            "751a756a942cd0aa197d32491a46e0f0509e106ef55169d30aec03ab9e696740",
            description="l_inf adversarial training (eps 0.3)",
        ),
        ZooEntry(
            "mnist-l1",
            "ab0dbc39360474e483dfeb8d7da5757cbf5c7dea4624adcafc5a16260153ff57",
            description="l_1 adversarial training (eps 10, SLIDE)",
        ),
        ZooEntry(
            "mnist-l2",
            "b7c3f8dfa8652cb609d9aed26c6a860e976af600e49895cf47f49277da26372b",
            description="l_2 adversarial training (eps 2)",
        ),
        ZooEntry(
            "mnist-rt",
            "43249beecf5ce7eff94f6a669b263beb68aa5a8fe752f55926f42fac65482c4a",
            description="rotation-translation adversarial training (+-30 deg, +-3 px; worst of 10)",
        ),
        ZooEntry(
            "mnist-avg",
            "3570007e377ef5d77d1c921b980f7626892b8b9c32d60d397fdd67aa4cdd19be",
            description="avg over l_inf, l_1, l_2 (train on all three attacks' outputs)",
        ),
        ZooEntry(
            "mnist-max",
            "f8a360a7a55e29fc7bbae9c5e8d66d6712740292efe55aedb414d32574e79f18",
            description="max over l_inf, l_1, l_2 (per example, the highest-loss attack)",
        ),
        ZooEntry(
            "mnist-msd",
            "8a01606d316aebd003c1f7765d85b1ec1529c282e1a65c71abf9072c182c134a",
            description="multi steepest descent over l_inf, l_1, l_2 (Maini et al. 2020)",
        ),
        ZooEntry(
            "mnist-eat",
            "239d7a5dec73baeb7583c359814af15689af080ef945a9ba1425490748fb0686",
            description="E-AT style over l_inf, l_1, l_2: one threat per batch (Croce & Hein 2022)",
        ),
        ZooEntry(
            "mnist-linf-rt-avg",
            "09337b8cac93d94a34ad5fa3d049fb59b55accf4bb06496569388b6696a03af6",
            description="avg over l_inf and rotation-translation",
        ),
        ZooEntry(
            "mnist-linf-rt-max",
            "cfa77532acffd8d47978d4a79ef5365a8ba90156a33d5b9c8ab86106beccb9fa",
            description="max over l_inf and rotation-translation",
        ),
    ]
}
# --- end of registry ---


def available() -> list[str]:
    """The names of the models whose weights ship with this version, in zoo order."""
    return [name for name in PLANNED if name in REGISTRY] + [
        name for name in REGISTRY if name not in PLANNED
    ]


def _entry(name: str) -> ZooEntry:
    if name in REGISTRY:
        return REGISTRY[name]
    if name in PLANNED:
        raise ZooError(
            f"zoo model {name!r} ({PLANNED[name]}) is not trained in this version; train it with "
            f"`advlab train --recipe {name}`. Shipped: {', '.join(available()) or 'none'}"
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
    """Check the file of ``name`` against its registered sha256; return its path or raise."""
    entry = _entry(name)
    path = Path(path) if path is not None else WEIGHTS / entry.file
    if not path.is_file():
        raise ZooError(f"the weights of {name!r} are missing: {path} (a broken installation? "
                       "the package data must include advlab/zoo/weights/*.safetensors)")
    digest = sha256_of(path)
    if digest != entry.sha256:
        raise ZooIntegrityError(
            f"refusing to load {path}: its sha256 is {digest} but the zoo registry expects "
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
