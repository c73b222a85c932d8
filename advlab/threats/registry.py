"""Every per-threat fact with a name: the paper's budgets per data set, the explorers' slider
ranges, labels, and how the preset attacks and training treat each threat.

One line per threat. Adding a threat model is one module (a ``ThreatModel`` subclass) plus one
``register`` line, here or in your own code::

    register(ThreatInfo("brightness", Brightness, "brightness", budgets={"mnist": 0.3}))

after which ``advlab.evaluation.presets.threats("mnist")`` includes it and ``presets.attacks``
gives it the standard gradient attacks (see docs/threats.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from .base import ThreatModel
from .l1 import L1
from .l2 import L2
from .linf import Linf
from .spatial import RotationTranslation

__all__ = ["ThreatInfo", "register", "unregister", "info", "names", "make", "budgets",
           "paper_budget", "BUDGETS"]


@dataclass(frozen=True)
class ThreatInfo:
    """What the library knows about a threat by name.

    make: budget -> threat model (e.g. ``Linf``; a budget pair for rotation-translation).
    label: how text writes it ("l_inf"). budgets: data set -> the paper's budget.
    sliders: data set -> (largest eps, slider step) for the interactive explorers.
    apgd_loss: the loss the preset APGD uses. pgd_steps: the ``presets.STRENGTHS`` entry that
    sets PGD's steps. square_p_init: the Square Attack's first window fraction.
    train_kinds: the ``AttackSpec`` kinds that can train against it.
    """

    name: str
    make: Callable[[object], ThreatModel]
    label: str
    budgets: Mapping[str, object] = field(default_factory=dict)
    sliders: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    apgd_loss: str = "dlr"
    pgd_steps: str = "steps"
    square_p_init: float = 0.8
    train_kinds: tuple[str, ...] = ("pgd", "apgd", "fgsm-rs")


_REGISTRY: dict[str, ThreatInfo] = {}


def register(entry: ThreatInfo) -> ThreatInfo:
    """Add (or replace) a threat by name; returns the entry."""
    _REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def info(name: str) -> ThreatInfo:
    """The registry entry of threat ``name`` (a clear KeyError for an unknown name)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown threat {name!r}; the registered threats are "
                       f"{list(_REGISTRY)}") from None


def names(dataset: str | None = None) -> list[str]:
    """Registered threat names, in registration order (those with a budget for ``dataset``)."""
    return [n for n, e in _REGISTRY.items() if dataset is None or dataset in e.budgets]


def make(name: str, budget=None, dataset: str = "mnist") -> ThreatModel:
    """Threat ``name`` at ``budget`` (default: the paper's budget for ``dataset``)."""
    entry = info(name)
    return entry.make(entry.budgets[dataset] if budget is None else budget)


def budgets(dataset: str) -> dict[str, object]:
    """Threat name -> the paper's budget on ``dataset``."""
    return {n: e.budgets[dataset] for n, e in _REGISTRY.items() if dataset in e.budgets}


def paper_budget(name: str, dataset: str = "mnist") -> str:
    """The paper's threat written out, e.g. "Linf(0.3)" (for messages)."""
    entry = _REGISTRY.get(name)
    if entry is None or dataset not in entry.budgets:
        return "none registered"
    return f"{getattr(entry.make, '__name__', name)}({entry.budgets[dataset]!r})"


class _BudgetTable(Mapping):
    """Data set -> {threat name: budget}, read from the registry at every access."""

    def __getitem__(self, dataset: str) -> dict:
        if not any(dataset in e.budgets for e in _REGISTRY.values()):
            raise KeyError(dataset)
        return budgets(dataset)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for e in _REGISTRY.values():
            seen.update(dict.fromkeys(e.budgets))
        return iter(seen)

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __repr__(self) -> str:
        return repr(dict(self.items()))


#: data set -> {threat name: the paper's budget} (``advlab.evaluation.presets.BUDGETS``)
BUDGETS = _BudgetTable()


def _rt(budget) -> RotationTranslation:
    rot, trans = budget
    return RotationTranslation(max_rot=rot, max_trans=trans)


# name, class, label, the paper's budgets (Tramèr & Boneh 2019), the explorers' (max, step)
register(ThreatInfo("linf", Linf, "l_inf", {"mnist": 0.3, "cifar10": 4 / 255},
                    {"mnist": (0.5, 0.01), "cifar10": (16 / 255, 1 / 255)}))
register(ThreatInfo("l1", L1, "l_1", {"mnist": 10.0, "cifar10": 2000 / 255},
                    {"mnist": (20.0, 0.5), "cifar10": (40.0, 1.0)},
                    apgd_loss="ce", pgd_steps="l1_steps", square_p_init=0.05))
register(ThreatInfo("l2", L2, "l_2", {"mnist": 2.0},
                    {"mnist": (5.0, 0.1), "cifar10": (2.0, 0.05)}))
register(ThreatInfo("rt", _rt, "rotation-translation",
                    {"mnist": (30.0, 3.0), "cifar10": (30.0, 3.0)}, train_kinds=("random",)))
