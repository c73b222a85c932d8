"""A class challenge's definition: the file ``advlab challenge new`` writes and the graders read.

A challenge is one JSON file (``challenge.json``) with two tracks:

- ``attack``: the published (or hidden) model, the threat model students attack within, the
  function name their notebook defines, the batch size and the sandbox limits;
- ``defense``: the threats a submitted model must resist (their union), the evaluation strength
  (``"strong"``: :func:`advlab.presets.trusted_attacks`), the clean-accuracy floor, the
  architectures a submission may name, and how many images the gradient-masking diagnosis uses.

Both tracks are scored on the same held-out images: ``n`` MNIST test images drawn by a seeded
permutation (the seed is written by ``new``; keep the file from students if the draw should stay
secret). A hidden model's weights live next to the file; their SHA-256 is recorded, so a changed
file is refused rather than graded against.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..evaluation.strengths import NAMES as STRENGTHS

FORMAT = 1
LP_THREATS = ("linf", "l2", "l1")
BASE_ARCHITECTURES = ("compact-cnn", "madry-cnn")
QUANTIZED = "quantized-"
DEFAULT_ARCHITECTURES = BASE_ARCHITECTURES + tuple(QUANTIZED + a for a in BASE_ARCHITECTURES)


class ChallengeError(ValueError):
    """A challenge file or argument that cannot be used; the message says what to change."""


@dataclass
class AttackLimits:
    """Sandbox limits for one attack submission (as :class:`advlab.course.engine.Limits`):
    ``call_timeout`` is per call of the student's function (one batch of images)."""

    cell_timeout: float = 120.0
    submission_timeout: float = 600.0
    call_timeout: float = 300.0
    memory_mb: int = 3072
    startup_timeout: float = 180.0


@dataclass
class AttackTrack:
    """The attack track: ``model`` is ``{"zoo": NAME}`` or ``{"weights": FILE, "architecture":
    ARCH, "sha256": HEX}`` (FILE relative to the challenge file); ``threat`` e.g. ``"linf:0.3"``."""

    model: dict = field(default_factory=lambda: {"zoo": "mnist-linf"})
    threat: str = "linf:0.3"
    function: str = "attack"
    notebook: str = "attack.ipynb"
    batch_size: int = 250
    limits: AttackLimits = field(default_factory=AttackLimits)


@dataclass
class DefenseTrack:
    """The defense track: the union of ``threats`` (names of :func:`advlab.presets.threats`),
    evaluated at ``strength``; a model whose clean accuracy is below ``clean_floor`` is not
    ranked; ``diagnose_n`` images go to :func:`advlab.diagnose` per l_p threat."""

    threats: list[str] = field(default_factory=lambda: ["linf", "l1", "l2"])
    strength: str = "strong"
    clean_floor: float = 0.95
    architectures: list[str] = field(default_factory=lambda: list(DEFAULT_ARCHITECTURES))
    diagnose_n: int = 100
    diagnose_queries: int = 1000
    file: str = "defense.safetensors"
    max_mb: int = 64


@dataclass
class Challenge:
    """A whole challenge; ``root`` is the folder of its file (hidden weights live there)."""

    name: str
    dataset: str = "mnist"
    n: int = 1000
    seed: int = 0
    attack: AttackTrack = field(default_factory=AttackTrack)
    defense: DefenseTrack = field(default_factory=DefenseTrack)
    root: Path = field(default=Path("."), compare=False, repr=False)

    def as_json(self) -> dict:
        """The file's content (``root`` is not stored)."""
        out = asdict(self)
        out.pop("root")
        return {"format": FORMAT, **out}

    def save(self, path: Path) -> Path:
        """Write the challenge file; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        self.root = path.parent
        return path

    def validate(self) -> Challenge:
        """Raise :class:`ChallengeError` for any value the graders cannot use."""
        if self.dataset != "mnist":
            raise ChallengeError(f"dataset {self.dataset!r}: only 'mnist' challenges exist so far")
        if not 1 <= self.n <= 10000:
            raise ChallengeError(f"n = {self.n}: choose 1..10000 MNIST test images")
        parse_threat(self.attack.threat)
        if self.attack.batch_size < 1:
            raise ChallengeError("attack.batch_size must be >= 1")
        _check_model_entry(self.attack.model)
        d = self.defense
        known = ("linf", "l1", "l2", "rt")
        bad = [t for t in d.threats if t not in known]
        if bad or not d.threats:
            raise ChallengeError(f"defense.threats {d.threats}: name one or more of {known}")
        if d.strength not in STRENGTHS:
            raise ChallengeError(f"defense.strength {d.strength!r}: choose one of {STRENGTHS} "
                                 "('strong' is the trusted evaluation)")
        if not 0.0 <= d.clean_floor <= 1.0:
            raise ChallengeError(f"defense.clean_floor {d.clean_floor}: a fraction in [0, 1]")
        bad = [a for a in d.architectures if a not in DEFAULT_ARCHITECTURES]
        if bad or not d.architectures:
            raise ChallengeError(f"defense.architectures {bad or d.architectures}: choose from "
                                 f"{DEFAULT_ARCHITECTURES}")
        return self


def _check_model_entry(model: dict) -> None:
    if not isinstance(model, dict) or not (("zoo" in model) ^ ("weights" in model)):
        raise ChallengeError("attack.model must be {'zoo': NAME} or {'weights': FILE, "
                             "'architecture': ARCH, 'sha256': HEX}")
    if "weights" in model and model.get("architecture") not in BASE_ARCHITECTURES:
        raise ChallengeError(f"attack.model.architecture {model.get('architecture')!r}: choose "
                             f"one of {BASE_ARCHITECTURES}")


def parse_threat(text: str):
    """``"linf:0.3"`` -> ``Linf(0.3)``; a bare name takes the paper's MNIST budget."""
    from .. import threats
    from ..evaluation import presets

    name, _, eps = str(text).partition(":")
    name = name.strip().lower()
    if name not in LP_THREATS:
        raise ChallengeError(f"threat {text!r}: the attack track takes an l_p threat, "
                             f"{' / '.join(LP_THREATS)}, optionally with a budget, e.g. 'linf:0.3'")
    try:
        value = float(eps) if eps else float(presets.BUDGETS["mnist"][name])
    except ValueError:
        raise ChallengeError(f"threat {text!r}: the budget after ':' must be a number") from None
    if not 0 < value < float("inf"):
        raise ChallengeError(f"threat {text!r}: the budget must be a finite number > 0")
    cls = {"linf": threats.Linf, "l2": threats.L2, "l1": threats.L1}[name]
    return cls(value)


def threat_payload(threat) -> dict:
    """Plain data that rebuilds ``threat`` in the kernel."""
    return {"name": threat.name, "eps": float(threat.eps)}


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(path: str | Path) -> Challenge:
    """Read and validate a challenge file."""
    path = Path(path)
    if not path.is_file():
        raise ChallengeError(f"challenge file {str(path)!r} does not exist; write one with "
                             "`advlab challenge new NAME -o FOLDER`")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChallengeError(f"{path} is not a JSON challenge file: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ChallengeError(f"{path}: not an advlab challenge file (format {FORMAT})")
    try:
        att = dict(raw.get("attack", {}))
        att["limits"] = AttackLimits(**att.get("limits", {}))
        ch = Challenge(
            name=str(raw["name"]), dataset=raw.get("dataset", "mnist"), n=int(raw.get("n", 1000)),
            seed=int(raw.get("seed", 0)), attack=AttackTrack(**att),
            defense=DefenseTrack(**raw.get("defense", {})), root=path.resolve().parent,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ChallengeError(f"{path}: a field is missing or unknown ({exc})") from None
    return ch.validate()


def new(name: str, seed: int | None = None, **fields) -> Challenge:
    """A fresh challenge with a random seed for the held-out draw (or ``seed``)."""
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    return Challenge(name=name, seed=seed, **fields).validate()


def held_out(ch: Challenge) -> tuple[torch.Tensor, torch.Tensor]:
    """The challenge's images: x (n, 1, 28, 28) float32 in [0, 1], y (n,) int64, drawn from the
    MNIST test set by a permutation seeded with ``ch.seed`` (a local generator)."""
    from ..data import mnist_tensors

    x, y = mnist_tensors(None, train=False)
    gen = torch.Generator().manual_seed(ch.seed)
    idx = torch.randperm(x.shape[0], generator=gen)[: ch.n]
    return x[idx].contiguous(), y[idx].contiguous()


def attack_model(ch: Challenge) -> tuple[torch.nn.Module, str]:
    """The attack track's model in eval mode and its architecture name.

    A zoo model is hash-checked by :mod:`advlab.zoo`; hidden weights against the recorded sha256.
    """
    from safetensors.torch import load_file

    from ..models import build_model

    spec = ch.attack.model
    if "zoo" in spec:
        from .. import zoo

        name = spec["zoo"]
        model = zoo.load(name)  # raises ZooError for an unknown name
        return model.eval(), zoo.REGISTRY[name].arch
    path = (ch.root / spec["weights"]).resolve()
    if not path.is_file():
        raise ChallengeError(f"the hidden model's weights {str(path)!r} are missing")
    if spec.get("sha256") and sha256_file(path) != spec["sha256"]:
        raise ChallengeError(f"{path.name} changed since the challenge was made (sha256 differs);"
                             " run `advlab challenge new` again or fix attack.model.sha256")
    model = build_model(spec["architecture"])
    model.load_state_dict(load_file(str(path), device="cpu"))
    return model.eval(), spec["architecture"]
