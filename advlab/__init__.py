"""advlab: adversarial robustness to multiple perturbations, as a course and a small library.

Images are float tensors in [0, 1] of shape (B, C, H, W); models return logits.

Everything below is imported on first use (``advlab.pgd``, ``advlab.zoo.load``,
``from advlab import Linf``), so ``import advlab`` and the command line start at once.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

# If advlab is imported before torch (as the command line always is): OpenMP's idle threads
# sleep instead of spinning, so that a shared CPU does not slow the attacks down several-fold
# (benchmarks/omp_wait.py); an explicit OMP_WAIT_POLICY wins. (Once torch is loaded the setting
# no longer has an effect.)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

# submodules reachable as advlab.NAME after a bare ``import advlab``
_SUBMODULES = ("attacks", "data", "masking", "models", "presets", "threats", "zoo", "train",
               "evaluation", "evaluate", "diagnose", "projections", "device", "notebook", "viz",
               "widgets", "tradeoff", "course", "course_figures")
# name -> the submodule that defines it
_NAMES = {
    "AttackResult": "attacks", "fgsm": "attacks", "pgd": "attacks", "grid_attack": "attacks",
    "DiagnosisReport": "evaluation.diagnostics", "diagnose": "evaluation.diagnostics",
    "UnionResult": "evaluation.union", "accuracy": "evaluation.union",
    "evaluate_union": "evaluation.union",
    "L1": "threats", "L2": "threats", "Affine": "threats", "Linf": "threats",
    "RotationTranslation": "threats",
}

__all__ = [
    "attacks",
    "data",
    "models",
    "presets",
    "threats",
    "zoo",
    "AttackResult",
    "fgsm",
    "pgd",
    "grid_attack",
    "evaluate_union",
    "accuracy",
    "UnionResult",
    "Linf",
    "L2",
    "L1",
    "RotationTranslation",
    "Affine",
    "masking",
    "diagnose",
    "DiagnosisReport",
]


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _SUBMODULES or (not name.startswith("_") and _is_submodule(name)):
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'advlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def _is_submodule(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"{__name__}.{name}") is not None


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


class _Package(types.ModuleType):
    """The import system binds each submodule to its package once loaded; ``advlab.diagnose``
    stays the function (not the submodule of the same name), as with eager imports."""

    def __setattr__(self, name, value):
        if name == "diagnose" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
