"""Training: standard, adversarial and multi-perturbation (see ``engine.train``, ``RECIPES``).

``basic.fit`` is the short loop the course and the tests use; ``train`` is the full engine
(strategies, eps warm-up, checkpoints and resume, progress, data-parallel).
"""

from __future__ import annotations

import importlib

# name -> submodule; imported on first use, so `advlab train --help` starts without torch
_NAMES = {"fit": "basic", "TrainResult": "engine", "init_model": "engine",
          "save_weights": "engine", "train": "engine", "RECIPES": "recipes", "Recipe": "recipes",
          "get_recipe": "recipes", "STRATEGIES": "strategies", "AttackSpec": "strategies",
          "Strategy": "strategies", "msd_attack": "strategies"}


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'advlab.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "fit",
    "train",
    "TrainResult",
    "init_model",
    "save_weights",
    "Recipe",
    "RECIPES",
    "get_recipe",
    "STRATEGIES",
    "AttackSpec",
    "Strategy",
    "msd_attack",
]
